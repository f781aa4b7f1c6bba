"""Running a benchmark script: progress lines, a run that broke, SIGTERM, the exit status."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator

#: When this benchmark process started (``say_elapsed`` counts from here).
T0 = time.perf_counter()


class Broken(RuntimeError):
    """The run itself went wrong (errors from the server, a ledger that does not reconcile,
    nothing measured): the script exits 1. A slow figure is never one of these."""


def say(msg: str) -> None:
    print(msg, flush=True)


def say_elapsed(msg: str) -> None:
    """A progress line with the seconds since the process started: ``[  12.3s] msg``."""
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so ``finally`` blocks drop databases and stop servers."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(run: Callable[[], int | None]) -> int:
    """Run ``run()`` and turn a broken run into exit status 1 with a one-line reason."""
    try:
        with sigterm_unwinds():
            result = run()
    except Broken as exc:
        print(f"bench: BROKEN RUN: {exc}", file=sys.stderr, flush=True)
        return 1
    return int(result or 0)
