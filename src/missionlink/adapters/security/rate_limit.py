"""Sliding-window rate limits kept in this process's memory."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from missionlink.domain.errors import RateLimited


class RateLimiter:
    """Counts events per key in a window; ``limit`` 0 disables the rule."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._events: dict[str, deque[float]] = {}
        self._now = monotonic

    def _window(self, key: str, window: float) -> deque[float]:
        now = self._now()
        q = self._events.setdefault(key, deque())
        while q and q[0] <= now - window:
            q.popleft()
        if not q:
            # Keep memory bounded: forget idle keys.
            self._events.pop(key, None)
            q = self._events.setdefault(key, deque())
        return q

    def retry_after(self, key: str, *, limit: int, window: float) -> int | None:
        """Seconds to wait when ``key`` has used up ``limit`` in ``window``, else None."""
        if limit <= 0:
            return None
        q = self._window(key, window)
        if len(q) < limit:
            return None
        return max(1, math.ceil(q[0] + window - self._now()))

    def record(self, key: str) -> None:
        self._events.setdefault(key, deque()).append(self._now())

    def hit(self, key: str, *, limit: int, window: float, what: str) -> None:
        """Count one event, or raise 429 with ``Retry-After`` when over the limit."""
        wait = self.retry_after(key, limit=limit, window=window)
        if wait is not None:
            raise RateLimited(f"too many {what}; retry in {wait} s", retry_after=wait)
        if limit > 0:
            self.record(key)

    def reset(self, key: str) -> None:
        self._events.pop(key, None)
