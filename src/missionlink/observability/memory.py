"""Keep resident memory flat and pauses short in a long-running process.

argon2 allocates its memory cost (19 MiB by default) per hash, in a thread. glibc's
dynamic mmap threshold then rises, so later buffers of that size come from the heap
and stay resident after ``free``; pinning the threshold keeps them as mmaps. glibc also
gives each new thread its own heap, up to eight per CPU; the SQLite connections' and
argon2's threads then leave freed memory scattered over 16 heaps on two CPUs (20-25 MiB
in the memory soak), so the process keeps two.

An API process holding thousands of live streams keeps hundreds of thousands of objects
that the cyclic garbage collector tracks, and a pledge's fan-out allocates a few short-lived
ones per stream: with Python's default young-generation threshold (700) the collector ran
about ten times inside each fan-out and took a third of its time. Almost everything an
API process allocates is freed by reference counting, so a larger young generation costs
a little memory and saves those passes.

The same process also holds everything its imports and its startup built (modules,
classes, pydantic validators, SQLAlchemy's tables): about 180,000 tracked objects that
live as long as the process. Each full collection walked them all, a 30-80 ms pause of
the event loop every few seconds under load: the tail of a pledge's latency. They are
moved out of the collector's sight once startup is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 128 * 1024
M_ARENA_MAX = -8
#: glibc heaps (arenas) for the whole process, the main thread's included.
MALLOC_ARENAS = 2
#: Allocations between two young-generation collections (Python's default is 700).
GC_YOUNG_THRESHOLD = 20_000


def pin_mmap_threshold() -> bool:
    """Pin the mmap threshold and cap the arenas; True when glibc accepted both (other C
    libraries are left alone). Run before the process starts threads."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        pinned = bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
        return bool(libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)) and pinned
    except (OSError, AttributeError):
        return False


def widen_young_generation() -> None:
    """Collect the young generation every ``GC_YOUNG_THRESHOLD`` allocations; older ones
    keep their default ratios."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def freeze_startup_objects() -> int:
    """Collect once, then move every object alive now to the permanent generation, which
    full collections skip; returns how many were moved. Call once, when the process has
    built its app: objects made later are collected as before, and a frozen object is still
    freed by reference counting when its last reference goes."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
