"""Keep resident memory flat: large allocations go back to the OS when freed.

argon2 allocates its memory cost (19 MiB by default) per hash, in a thread. glibc's
dynamic mmap threshold then rises, so later buffers of that size come from the heap
and stay resident after ``free``; pinning the threshold keeps them as mmaps.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 128 * 1024


def pin_mmap_threshold() -> bool:
    """True when glibc accepted the setting (other C libraries are left alone)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
