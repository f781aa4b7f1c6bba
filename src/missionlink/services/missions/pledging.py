"""Pledging: a backer's cash into the mission's escrow, with its journal transfer, the
sharded running total and the ``pledge.created`` event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal, outbox
from missionlink.adapters.db.core_tables import TOTAL_SHARDS, mission_totals, missions, pledges
from missionlink.adapters.db.sql import upsert_add
from missionlink.domain import ledger as L
from missionlink.domain.errors import Forbidden, NotFound
from missionlink.domain.missions import Action, check_action
from missionlink.domain.timestamps import iso
from missionlink.services.mission_views import view_of
from missionlink.services.missions.limits import MissionLimits, check_pledge_amount
from missionlink.services.missions.rows import lock_shared, mission_not_found

#: A pledge's journal transfer is ``pledge:{pledge id}``; reconcile looks it up by that id.
PLEDGE_TRANSFER_PREFIX = f"{L.TransferKind.pledge.value}:"


async def record_pledge(
    conn: AsyncConnection, mission_id: int, streamer_id: int, user_id: int, amount: int,
    now: datetime, *, message: str | None = None, anonymous: bool = False,
) -> dict[str, Any]:
    await journal.debit_wallet(conn, user_id, L.KRW, amount)
    pledge_id = await conn.scalar(
        insert(pledges)
        .values(mission_id=mission_id, user_id=user_id, amount=amount, created_at=now,
                message=message, anonymous=anonymous)
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
            "message": message,
            "anonymous": anonymous,
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
        "message": message,
        "anonymous": anonymous,
    }


async def pledge(
    conn: AsyncConnection,
    *,
    settings: MissionLimits,
    now: datetime,
    user_id: int,
    mission_id: int,
    amount: int,
    message: str | None = None,
    anonymous: bool = False,
) -> dict[str, Any]:
    """The portable pledge, inside the caller's transaction (SQLite, or any database);
    ``message`` as stored (``domain.pledge_messages.message_of``)."""
    check_pledge_amount(settings, amount)
    row = await lock_shared(conn, mission_id)
    check_action(view_of(row), Action.pledge, user_id, now)
    return await record_pledge(conn, mission_id, row.streamer_id, user_id, amount, now,
                               message=message, anonymous=anonymous)


async def hide_message(
    conn: AsyncConnection, *, now: datetime, actor_id: int, mission_id: int, pledge_id: int
) -> dict[str, Any]:
    """The mission's streamer hides a pledge's message from every public view (the pledge
    itself stays). Hiding it again changes nothing."""
    streamer_id = await conn.scalar(select(missions.c.streamer_id)
                                    .where(missions.c.id == mission_id))
    if streamer_id is None:
        raise mission_not_found(mission_id)
    if streamer_id != actor_id:
        raise Forbidden("only the mission's streamer may hide a pledge's message")
    found = await conn.scalar(select(pledges.c.id).where(
        pledges.c.id == pledge_id, pledges.c.mission_id == mission_id))
    if found is None:
        raise NotFound(f"pledge {pledge_id} of mission {mission_id} does not exist")
    await conn.execute(update(pledges)
                       .where(pledges.c.id == pledge_id, pledges.c.message_hidden_at.is_(None))
                       .values(message_hidden_at=now))
    return {"id": pledge_id, "mission_id": mission_id, "streamer_id": streamer_id,
            "message": None, "message_hidden": True}
