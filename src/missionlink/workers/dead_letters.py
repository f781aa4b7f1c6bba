"""Operator tools for events that kept failing: list them, replay one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from missionlink.adapters.db.core_tables import dead_letters, outbox
from missionlink.adapters.db.engine import Database
from missionlink.config import Settings
from missionlink.domain.clock import SystemClock


async def list_dead_letters(settings: Settings) -> list[dict[str, Any]]:
    db = Database(settings.core_url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(select(dead_letters).order_by(dead_letters.c.id))
            return [dict(r._mapping) for r in rows]
    finally:
        await db.dispose()


async def replay(db: Database, dead_letter_id: int) -> bool:
    """Put the event back in the outbox; handlers that already succeeded stay skipped."""
    now = SystemClock().now()
    async with db.begin() as conn:
        row = (
            await conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dead_letter_id, dead_letters.c.replayed_at.is_(None))
                .values(replayed_at=now)
                .returning(dead_letters.c.event_id)
            )
        ).first()
        if row is None:
            return False
        await conn.execute(
            update(outbox)
            .where(outbox.c.id == row.event_id)
            .values(processed_at=None, attempts=0, available_at=now, last_error=None)
        )
        await conn.execute(
            update(dead_letters)
            .where(dead_letters.c.event_id == row.event_id)
            .values(replayed_at=now)
        )
    return True


async def replay_dead_letter(settings: Settings, dead_letter_id: int) -> bool:
    db = Database(settings.core_url)
    try:
        return await replay(db, dead_letter_id)
    finally:
        await db.dispose()
