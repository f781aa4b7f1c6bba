"""Write events into the outbox, in the transaction that made the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import outbox

MISSION_CREATED = "mission.created"
MISSION_ACCEPTED = "mission.accepted"
MISSION_ENDED = "mission.ended"
MISSION_SETTLED = "mission.settled"
PLEDGE_CREATED = "pledge.created"
BET_PLACED = "bet.placed"


async def emit(conn: AsyncConnection, topic: str, payload: dict[str, Any], now: datetime) -> None:
    await conn.execute(
        insert(outbox).values(topic=topic, payload=payload, created_at=now, available_at=now)
    )
