import gc

from missionlink.observability.memory import (
    GC_YOUNG_THRESHOLD,
    pin_mmap_threshold,
    widen_young_generation,
)


def test_pinning_the_mmap_threshold_is_accepted_on_glibc() -> None:
    assert pin_mmap_threshold() is True


def test_the_young_generation_is_widened_and_the_older_ratios_kept() -> None:
    before = gc.get_threshold()
    try:
        widen_young_generation()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.set_threshold(*before)
