"""Write events into the outbox, in the transaction that made the change.

Each event keeps the request id bound to the log context (the request's, or in the worker
the one of the event being handled), so what it causes later is logged under that id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import outbox
from missionlink.domain.events import (
    BET_PLACED,
    MISSION_ACCEPTED,
    MISSION_CREATED,
    MISSION_ENDED,
    MISSION_SETTLED,
    PLEDGE_CREATED,
)

#: The topics, beside ``emit`` for the code that writes them.
__all__ = [
    "BET_PLACED", "MISSION_ACCEPTED", "MISSION_CREATED", "MISSION_ENDED", "MISSION_SETTLED",
    "PLEDGE_CREATED", "emit",
]


async def emit(conn: AsyncConnection, topic: str, payload: dict[str, Any], now: datetime) -> None:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    await conn.execute(
        insert(outbox).values(topic=topic, payload=payload, created_at=now, available_at=now,
                              request_id=request_id)
    )
