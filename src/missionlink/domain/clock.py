"""Clocks: one source of "now", injected so tests can move time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock for tests: stands still until moved."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class ReferenceClock:
    """This machine's clock, set by a reference clock (the database server's): ``now()`` is
    the local time plus the offset the last :meth:`calibrate` measured. Deadlines are
    written by one process and judged by another; with every process's "now" taken from
    the same reference, a process whose own clock is off expires nothing early or late.
    """

    def __init__(self, local: Clock | None = None) -> None:
        self._local = local or SystemClock()
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self._local.now() + self.offset

    async def calibrate(self, reference: Callable[[], Awaitable[datetime]]) -> timedelta:
        """Measure the reference against the local clock (at the midpoint of the read)."""
        before = self._local.now()
        theirs = await reference()
        after = self._local.now()
        self.offset = theirs - (before + (after - before) / 2)
        return self.offset
