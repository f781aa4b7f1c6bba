"""Percentiles, as the benchmarks report them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def percentile(values: Sequence[float], q: float,
               rank: Callable[[float], int] = math.ceil) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 1) of ``values``: the value at position
    ``rank(q * n)`` of the sorted list, clamped to it. ``rank`` is ``math.ceil`` (the
    textbook nearest rank); bench/live.py passes ``round``, as its published figures did.
    NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, rank(q * len(ordered)) - 1))]
