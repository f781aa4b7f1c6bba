import gc
import os
import subprocess
import sys

from missionlink.observability.memory import (
    GC_YOUNG_THRESHOLD,
    freeze_startup_objects,
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


def test_the_entry_point_freezes_what_startup_built(tmp_path) -> None:
    """`serve` builds its app through `create_from_env`; what that built must be out of
    the full collections' sight, or each one pauses the event loop for tens of ms."""
    script = (
        "import gc\n"
        "from missionlink.asgi import create_from_env\n"
        "create_from_env()\n"
        "assert gc.get_freeze_count() > 50_000, gc.get_freeze_count()\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
    env.update({"MISSIONLINK_DATA_DIR": str(tmp_path), "MISSIONLINK_SERVE_WORKER": "0",
                "MISSIONLINK_API_METRICS_PORT": "0"})
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    frozen, walked = done.stdout.split()[-2:]
    assert int(frozen) > 50_000
    # a full collection walks only what is not frozen: next to nothing right after startup
    assert int(walked) < 1_000


def test_freezing_moves_live_objects_to_the_permanent_generation() -> None:
    before = gc.get_freeze_count()
    keep = [[i] for i in range(1000)]
    try:
        moved = freeze_startup_objects()
        assert moved >= before + len(keep)
        assert all(gc.is_tracked(x) for x in keep)
    finally:
        gc.unfreeze()
