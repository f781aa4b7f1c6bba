"""Finding a mission row: the lock pledges and bets take, and the refusal when it is missing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import missions
from missionlink.adapters.db.sql import dialect_of
from missionlink.domain.errors import NotFound


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
