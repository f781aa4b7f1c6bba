"""Mission use cases: propose, pledge, accept, reject, cancel, declare the result."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal, outbox
from missionlink.adapters.db.core_tables import (
    TOTAL_SHARDS,
    channels,
    mission_totals,
    missions,
    pledges,
)
from missionlink.adapters.db.sql import dialect_of, upsert_add
from missionlink.domain import ledger as L
from missionlink.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProposalBlocked,
)
from missionlink.domain.missions import RESULT_STATUS, TERMINAL, Action, Status, check_action
from missionlink.domain.timestamps import iso
from missionlink.services.mission_views import get_mission, overdue_filter, view_of

DAY = timedelta(hours=24)
#: A pledge's journal transfer is ``pledge:{pledge id}``; reconcile looks it up by that id.
PLEDGE_TRANSFER_PREFIX = f"{L.TransferKind.pledge.value}:"


class MissionLimits(Protocol):
    """The configured limits the mission rules read (``config.Settings`` has them all)."""

    @property
    def min_pledge(self) -> int: ...
    @property
    def max_pledge(self) -> int: ...
    @property
    def min_mission_seconds(self) -> int: ...
    @property
    def max_mission_seconds(self) -> int: ...
    @property
    def proposal_cooldown_seconds(self) -> int: ...
    @property
    def cancel_limit_per_day(self) -> int: ...
    @property
    def result_grace_seconds(self) -> int: ...
    @property
    def platform_fee_bps(self) -> int: ...


def check_pledge_amount(settings: MissionLimits, amount: int) -> None:
    if not settings.min_pledge <= amount <= settings.max_pledge:
        raise InvalidInput(
            f"amount must be between {settings.min_pledge} and {settings.max_pledge} KRW"
        )


async def _check_proposal_allowed(
    conn: AsyncConnection, settings: MissionLimits, creator_id: int, streamer_id: int, now: datetime
) -> None:
    cooldown = timedelta(seconds=settings.proposal_cooldown_seconds)
    last_refused = await conn.scalar(
        select(func.max(missions.c.ended_at)).where(
            missions.c.creator_id == creator_id,
            missions.c.streamer_id == streamer_id,
            missions.c.status.in_([Status.rejected.value, Status.cancelled.value]),
            missions.c.ended_at > now - cooldown,
        )
    )
    if last_refused is not None:
        wait = math.ceil((last_refused + cooldown - now).total_seconds())
        raise ProposalBlocked(
            f"your last mission on this channel was rejected or cancelled; retry in {wait} s",
            retry_after=max(wait, 1),
        )
    cancels = (
        await conn.execute(
            select(func.count(), func.max(missions.c.ended_at)).where(
                missions.c.creator_id == creator_id,
                missions.c.status == Status.cancelled.value,
                missions.c.ended_at > now - DAY,
            )
        )
    ).one()
    if cancels[0] >= settings.cancel_limit_per_day:
        wait = math.ceil((cancels[1] + DAY - now).total_seconds())
        raise ProposalBlocked(
            f"{cancels[0]} cancelled missions in 24 hours; proposing is blocked for {wait} s",
            retry_after=max(wait, 1),
        )


async def create_mission(
    conn: AsyncConnection,
    *,
    settings: MissionLimits,
    now: datetime,
    creator_id: int,
    streamer_id: int,
    title: str,
    description: str,
    amount: int,
    duration_seconds: int,
) -> dict[str, Any]:
    check_pledge_amount(settings, amount)
    if not settings.min_mission_seconds <= duration_seconds <= settings.max_mission_seconds:
        raise InvalidInput(
            f"duration_seconds must be between {settings.min_mission_seconds} and "
            f"{settings.max_mission_seconds}"
        )
    if creator_id == streamer_id:
        raise Forbidden("you cannot propose a mission to your own channel")
    channel = (
        await conn.execute(select(channels).where(channels.c.streamer_id == streamer_id))
    ).first()
    if channel is None:
        raise NotFound(f"streamer {streamer_id} does not exist")
    if not channel.missions_enabled:
        raise Conflict("this streamer is not taking missions right now")
    if amount < channel.min_mission_amount:
        raise InvalidInput(
            f"this channel's missions start at {channel.min_mission_amount} KRW"
        )
    await _check_proposal_allowed(conn, settings, creator_id, streamer_id, now)
    deadline = now + timedelta(seconds=duration_seconds)
    accept_by = min(deadline, now + timedelta(seconds=channel.accept_timeout_seconds))
    mission_id = await conn.scalar(
        insert(missions)
        .values(
            streamer_id=streamer_id,
            creator_id=creator_id,
            title=title,
            description=description,
            status=Status.pending.value,
            fee_bps=settings.platform_fee_bps,
            created_at=now,
            accept_by=accept_by,
            deadline_at=deadline,
            result_by=deadline + timedelta(seconds=settings.result_grace_seconds),
        )
        .returning(missions.c.id)
    )
    assert mission_id is not None
    await outbox.emit(
        conn,
        outbox.MISSION_CREATED,
        {"mission_id": mission_id, "streamer_id": streamer_id, "creator_id": creator_id},
        now,
    )
    await _record_pledge(conn, mission_id, streamer_id, creator_id, amount, now)
    return await get_mission(conn, mission_id, now)


async def lock_shared(conn: AsyncConnection, mission_id: int) -> Any:
    """The mission row, locked for pledges and bets."""
    # Pledges never block each other, but a terminal transition (FOR UPDATE) waits for
    # in-flight pledges and they, in turn, see its result.
    stmt = dialect_of(conn).share_key(select(missions).where(missions.c.id == mission_id))
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise mission_not_found(mission_id)
    return row


def mission_not_found(mission_id: int) -> NotFound:
    return NotFound(f"mission {mission_id} does not exist")


async def _record_pledge(
    conn: AsyncConnection, mission_id: int, streamer_id: int, user_id: int, amount: int,
    now: datetime,
) -> dict[str, Any]:
    await journal.debit_wallet(conn, user_id, L.KRW, amount)
    pledge_id = await conn.scalar(
        insert(pledges)
        .values(mission_id=mission_id, user_id=user_id, amount=amount, created_at=now)
        .returning(pledges.c.id)
    )
    await journal.post(
        conn,
        kind=L.TransferKind.pledge,
        currency=L.KRW,
        from_account=L.user_cash(user_id),
        to_account=L.escrow(mission_id),
        amount=amount,
        now=now,
        mission_id=mission_id,
        transfer_id=f"{PLEDGE_TRANSFER_PREFIX}{pledge_id}",
    )
    assert pledge_id is not None
    await upsert_add(
        conn,
        mission_totals,
        {"mission_id": mission_id, "shard": pledge_id % TOTAL_SHARDS},
        {"amount": amount, "pledges": 1},
    )
    total = int(
        await conn.scalar(
            select(func.coalesce(func.sum(mission_totals.c.amount), 0)).where(
                mission_totals.c.mission_id == mission_id
            )
        )
        or 0
    )
    await outbox.emit(
        conn,
        outbox.PLEDGE_CREATED,
        {
            "mission_id": mission_id,
            "streamer_id": streamer_id,
            "pledge_id": pledge_id,
            "user_id": user_id,
            "amount": amount,
            "total_pledged": total,
        },
        now,
    )
    return {
        "id": pledge_id,
        "mission_id": mission_id,
        "user_id": user_id,
        "amount": amount,
        "total_pledged": total,
        "created_at": iso(now),
    }


async def pledge(
    conn: AsyncConnection,
    *,
    settings: MissionLimits,
    now: datetime,
    user_id: int,
    mission_id: int,
    amount: int,
) -> dict[str, Any]:
    """The portable pledge, inside the caller's transaction (SQLite, or any database)."""
    check_pledge_amount(settings, amount)
    row = await lock_shared(conn, mission_id)
    check_action(view_of(row), Action.pledge, user_id, now)
    return await _record_pledge(conn, mission_id, row.streamer_id, user_id, amount, now)


async def transition(
    conn: AsyncConnection,
    *,
    now: datetime,
    actor_id: int,
    mission_id: int,
    action: Action,
) -> dict[str, Any]:
    """Accept, reject, cancel, succeed or fail: synchronous; money moves at settlement."""
    row = (
        await conn.execute(
            select(missions).where(missions.c.id == mission_id).with_for_update()
        )
    ).first()
    if row is None:
        raise mission_not_found(mission_id)
    check_action(view_of(row), action, actor_id, now)
    new_status = RESULT_STATUS[action]
    values: dict[str, Any] = {"status": new_status.value}
    if new_status is Status.accepted:
        values["accepted_at"] = now
    if new_status in TERMINAL:
        values["ended_at"] = now
        values["settlement"] = "pending"
    await conn.execute(
        update(missions)
        .where(and_(missions.c.id == mission_id, missions.c.status == row.status))
        .values(**values)
    )
    topic = outbox.MISSION_ENDED if new_status in TERMINAL else outbox.MISSION_ACCEPTED
    await outbox.emit(
        conn,
        topic,
        {"mission_id": mission_id, "streamer_id": row.streamer_id, "status": new_status.value},
        now,
    )
    return await get_mission(conn, mission_id, now)


async def expire_due(conn: AsyncConnection, now: datetime, limit: int = 500) -> int:
    """Move open missions past their expiry to ``expired``: a pending one at its acceptance
    timeout or deadline, an accepted one only at ``result_by`` (``domain.missions.expires_at``),
    so none is settled while its result may still be declared."""
    overdue = select(missions.c.id, missions.c.streamer_id).where(
        overdue_filter(now)
    ).order_by(missions.c.id).limit(limit)
    rows = list(await conn.execute(dialect_of(conn).claim(overdue)))
    for r in rows:
        await conn.execute(
            update(missions)
            .where(missions.c.id == r.id)
            .values(status=Status.expired.value, ended_at=now, settlement="pending")
        )
        await outbox.emit(
            conn,
            outbox.MISSION_ENDED,
            {"mission_id": r.id, "streamer_id": r.streamer_id, "status": Status.expired.value},
            now,
        )
    return len(rows)
