from missionlink.observability.memory import pin_mmap_threshold


def test_pinning_the_mmap_threshold_is_accepted_on_glibc() -> None:
    assert pin_mmap_threshold() is True
