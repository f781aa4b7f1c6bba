"""The mission use cases on an in-memory core (tests/fakes.py::MemoryCore): proposing,
pledging, the streamer's answer, results and expiry, each test in milliseconds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from missionlink.adapters.db import journal
from missionlink.adapters.db.core_tables import missions, outbox, transfers, wallets
from missionlink.domain import events
from missionlink.domain.errors import (
    DeadlinePassed,
    Forbidden,
    InsufficientFunds,
    InvalidInput,
    InvalidState,
    ProposalBlocked,
)
from missionlink.domain.ledger import KRW, escrow, user_cash
from missionlink.domain.missions import Action
from missionlink.services import missions as use
from missionlink.services.members import MemberDefaults, open_member
from tests.fakes import MemoryCore

NOW = datetime(2025, 8, 1, 12, 0, tzinfo=UTC)
STREAMER, FAN, OTHER = 1, 2, 3


@dataclass(frozen=True)
class Limits:
    min_pledge: int = 1_000
    max_pledge: int = 1_000_000
    min_mission_seconds: int = 600
    max_mission_seconds: int = 7 * 86_400
    proposal_cooldown_seconds: int = 3_600
    cancel_limit_per_day: int = 5
    platform_fee_bps: int = 1_000
    result_grace_seconds: int = 600


LIMITS = Limits()
DEFAULTS = MemberDefaults.within(signup_points=0, min_pledge=LIMITS.min_pledge,
                                 max_mission_seconds=LIMITS.max_mission_seconds)


@pytest.fixture
async def core() -> AsyncIterator[MemoryCore]:
    core = await MemoryCore().create()
    async with core.unit() as conn:
        for user_id, role in ((STREAMER, "streamer"), (FAN, "viewer"), (OTHER, "viewer")):
            await open_member(conn, defaults=DEFAULTS, user_id=user_id,
                              display_name=f"user {user_id}", role=role, now=NOW)
        for user_id in (FAN, OTHER):
            await journal.credit_wallet(conn, user_id, KRW, 50_000)
    yield core
    await core.close()


async def propose(core: MemoryCore, *, amount: int = 5_000, creator: int = FAN,
                  now: datetime = NOW, hours: int = 2) -> dict[str, Any]:
    async with core.unit() as conn:
        return await use.create_mission(
            conn, settings=LIMITS, now=now, creator_id=creator, streamer_id=STREAMER,
            title="Beat the boss", description="no deaths", amount=amount,
            duration_seconds=hours * 3_600,
        )


async def act(core: MemoryCore, mission_id: int, action: Action, actor: int,
              now: datetime = NOW) -> dict[str, Any]:
    async with core.unit() as conn:
        return await use.transition(conn, now=now, actor_id=actor, mission_id=mission_id,
                                    action=action)


async def pledge(core: MemoryCore, mission_id: int, amount: int, user: int = OTHER,
                 now: datetime = NOW) -> dict[str, Any]:
    async with core.unit() as conn:
        return await use.pledge(conn, settings=LIMITS, now=now, user_id=user,
                                mission_id=mission_id, amount=amount)


async def cash(core: MemoryCore, user_id: int) -> int:
    async with core.unit() as conn:
        return int(await conn.scalar(
            select(wallets.c.cash_balance).where(wallets.c.user_id == user_id)) or 0)


async def topics(core: MemoryCore) -> list[str]:
    async with core.unit() as conn:
        return list((await conn.execute(select(outbox.c.topic).order_by(outbox.c.id))).scalars())


async def test_a_proposal_escrows_its_first_pledge_and_records_both_events(
    core: MemoryCore,
) -> None:
    mission = await propose(core, amount=5_000)
    assert mission["status"] == "pending" and mission["total_pledged"] == 5_000
    assert await cash(core, FAN) == 45_000
    async with core.unit() as conn:
        moved = (await conn.execute(select(transfers))).one()
    assert (moved.from_account, moved.to_account, moved.amount) == (
        user_cash(FAN), escrow(mission["id"]), 5_000)
    assert await topics(core) == [events.MISSION_CREATED, events.PLEDGE_CREATED]


async def test_a_pledge_outside_the_bounds_writes_nothing(core: MemoryCore) -> None:
    mission = await propose(core)
    for amount in (LIMITS.min_pledge - 1, LIMITS.max_pledge + 1):
        with pytest.raises(InvalidInput):
            await pledge(core, mission["id"], amount)
    assert await cash(core, OTHER) == 50_000


async def test_a_pledge_beyond_the_wallet_is_refused_and_changes_nothing(
    core: MemoryCore,
) -> None:
    mission = await propose(core)
    with pytest.raises(InsufficientFunds):
        await pledge(core, mission["id"], 50_001)
    assert await cash(core, OTHER) == 50_000
    assert await topics(core) == [events.MISSION_CREATED, events.PLEDGE_CREATED]


async def test_the_streamer_cannot_back_their_own_mission(core: MemoryCore) -> None:
    mission = await propose(core)
    with pytest.raises(Forbidden):
        await pledge(core, mission["id"], 1_000, user=STREAMER)


async def test_only_the_streamer_accepts_and_a_result_ends_the_mission(
    core: MemoryCore,
) -> None:
    mission = await propose(core)
    with pytest.raises(Forbidden):
        await act(core, mission["id"], Action.accept, FAN)
    accepted = await act(core, mission["id"], Action.accept, STREAMER)
    assert accepted["status"] == "accepted"
    ended = await act(core, mission["id"], Action.succeed, STREAMER,
                      now=NOW + timedelta(minutes=30))
    assert (ended["status"], ended["settlement"]) == ("succeeded", "pending")
    with pytest.raises(InvalidState):
        await act(core, mission["id"], Action.fail, STREAMER, now=NOW + timedelta(minutes=31))
    assert (await topics(core))[-2:] == [events.MISSION_ACCEPTED, events.MISSION_ENDED]


async def test_a_mission_not_accepted_in_time_expires_and_takes_no_more_pledges(
    core: MemoryCore,
) -> None:
    mission = await propose(core)
    late = NOW + timedelta(seconds=mission_accept_window(mission))
    with pytest.raises(DeadlinePassed):
        await pledge(core, mission["id"], 1_000, now=late)
    async with core.unit() as conn:
        assert await use.expire_due(conn, late) == 1
        assert await use.expire_due(conn, late) == 0
        status = await conn.scalar(select(missions.c.status).where(missions.c.id == mission["id"]))
    assert status == "expired"
    assert (await topics(core))[-1] == events.MISSION_ENDED


async def test_a_rejected_fan_waits_out_the_cooldown_before_proposing_again(
    core: MemoryCore,
) -> None:
    mission = await propose(core)
    await act(core, mission["id"], Action.reject, STREAMER)
    with pytest.raises(ProposalBlocked):
        await propose(core, now=NOW + timedelta(minutes=59))
    again = await propose(core, now=NOW + timedelta(seconds=LIMITS.proposal_cooldown_seconds))
    assert again["status"] == "pending"


def mission_accept_window(mission: dict[str, Any]) -> float:
    accept_by = datetime.fromisoformat(mission["accept_by"].replace("Z", "+00:00"))
    return (accept_by - NOW).total_seconds()
