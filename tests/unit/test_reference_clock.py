"""A process's clock set by the database server's: deadlines judged on one time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from missionlink.domain.clock import FrozenClock, ReferenceClock


async def test_a_clock_two_hours_ahead_is_set_back_by_the_reference() -> None:
    true_now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    local = FrozenClock(true_now + timedelta(hours=2))
    clock = ReferenceClock(local)
    assert clock.now() == true_now + timedelta(hours=2)  # not calibrated yet

    async def database() -> datetime:
        return true_now

    offset = await clock.calibrate(database)
    assert offset == timedelta(hours=-2)
    assert clock.now() == true_now
    local.advance(30)
    assert clock.now() == true_now + timedelta(seconds=30)


async def test_the_offset_is_taken_at_the_middle_of_the_read() -> None:
    local = FrozenClock(datetime(2026, 12, 2, tzinfo=UTC))
    clock = ReferenceClock(local)

    async def slow_database() -> datetime:
        reading = local.now()
        local.advance(2)  # the answer took two seconds to come back
        return reading + timedelta(seconds=1)

    await clock.calibrate(slow_database)
    assert clock.offset == timedelta(0)
