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


def _start_api_process(tmp_path, extra: str) -> str:
    """Build the app as `serve` does, in a fresh interpreter, then run ``extra``; its
    standard output."""
    script = ("import gc, sys\n"
              "from missionlink.asgi import create_from_env\n"
              "create_from_env()\n" + extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
    env.update({"MISSIONLINK_DATA_DIR": str(tmp_path), "MISSIONLINK_SERVE_WORKER": "0",
                "MISSIONLINK_API_METRICS_PORT": "0"})
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_entry_point_freezes_what_startup_built(tmp_path) -> None:
    """`serve` builds its app through `create_from_env`; what that built must be out of
    the full collections' sight, or each one pauses the event loop for tens of ms."""
    out = _start_api_process(tmp_path, "print(gc.get_freeze_count(), len(gc.get_objects()))\n")
    frozen, walked = out.split()[-2:]
    assert int(frozen) > 50_000
    # a full collection walks only what is not frozen: next to nothing right after startup
    assert int(walked) < 1_000


def test_an_api_process_without_a_card_provider_loads_no_provider_sdk(tmp_path) -> None:
    """PortOne's SDK alone is about 1,100 modules and 20 MB of resident memory: a process
    on the sandbox provider (the default) must not import it, nor Stripe's."""
    out = _start_api_process(tmp_path, (
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('portone_server_sdk', 'stripe', 'requests')))\n"))
    assert out.split("\n")[-2] == "[]"


def test_freezing_moves_live_objects_to_the_permanent_generation() -> None:
    before = gc.get_freeze_count()
    keep = [[i] for i in range(1000)]
    try:
        moved = freeze_startup_objects()
        assert moved >= before + len(keep)
        assert all(gc.is_tracked(x) for x in keep)
    finally:
        gc.unfreeze()
