"""A mission's life after proposing: accept, reject, cancel, the result, and expiry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import outbox
from missionlink.adapters.db.core_tables import missions
from missionlink.adapters.db.sql import dialect_of
from missionlink.domain import text
from missionlink.domain.errors import InvalidInput
from missionlink.domain.missions import (
    REJECT_REASON,
    RESULT_STATUS,
    TERMINAL,
    Action,
    Status,
    check_action,
)
from missionlink.services.mission_views import get_mission, overdue_filter, view_of
from missionlink.services.missions.rows import mission_not_found


async def transition(
    conn: AsyncConnection,
    *,
    now: datetime,
    actor_id: int,
    mission_id: int,
    action: Action,
    reason: str | None = None,
) -> dict[str, Any]:
    """Accept, reject, cancel, succeed or fail: synchronous; money moves at settlement.

    ``reason`` is the streamer's optional words with a reject (``REJECT_REASON``), stored
    on the mission for its page and the backers' refund emails; other actions take none."""
    if reason is not None:
        if action is not Action.reject:
            raise InvalidInput("reason: only a reject carries a reason")
        reason = text.check("reason", reason, REJECT_REASON) or None
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
    if new_status is Status.rejected:
        values["reject_reason"] = reason
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
