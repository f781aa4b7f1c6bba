"""Operator tools for work that kept failing: list it, replay one item.

Two kinds share one list, told apart by the id's prefix: ``event:N`` is an outbox event
whose handler kept failing (a bare ``N`` still means an event), ``email:N`` is a result
email the mail server never accepted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from missionlink.adapters.db.core_tables import dead_letters, email_jobs
from missionlink.adapters.db.engine import Database, Timeouts
from missionlink.config import Settings
from missionlink.domain.clock import SystemClock
from missionlink.domain.errors import NotFound
from missionlink.services import operations
from missionlink.services.operations import DeadLetterId, parse_id

__all__ = ["DeadLetterId", "describe", "list_all", "list_dead_letters", "parse_id",
           "replay", "replay_any", "replay_dead_letter", "replay_email"]

async def list_all(db: Database) -> list[dict[str, Any]]:
    """Dead events, then failed emails; an email row names its user id, never the address."""
    async with db.read() as conn:
        events = await conn.execute(select(dead_letters).order_by(dead_letters.c.id))
        emails = await conn.execute(
            select(
                email_jobs.c.id, email_jobs.c.mission_id, email_jobs.c.user_id,
                email_jobs.c.role, email_jobs.c.message_id, email_jobs.c.attempts,
                email_jobs.c.last_error,
            )
            .where(email_jobs.c.status == "failed")
            .order_by(email_jobs.c.id)
        )
        rows: list[dict[str, Any]] = [
            {
                "id": str(DeadLetterId("event", r.id)), "kind": "event",
                "event_id": r.event_id, "topic": r.topic, "attempts": r.attempts,
                "failed_at": r.failed_at, "replayed_at": r.replayed_at, "error": r.error,
            }
            for r in events
        ]
        rows += [
            {
                "id": str(DeadLetterId("email", r.id)), "kind": "email",
                "user_id": r.user_id, "mission_id": r.mission_id, "role": r.role,
                "message_id": r.message_id, "attempts": r.attempts,
                "error": r.last_error or "",
            }
            for r in emails
        ]
        return rows


async def list_dead_letters(settings: Settings) -> list[dict[str, Any]]:
    db = Database(settings.core_url, timeouts=Timeouts.of(settings))
    try:
        return await list_all(db)
    finally:
        await db.dispose()


def describe(row: dict[str, Any]) -> str:
    """One tab-separated line per dead letter for ``missionlink dead-letters list``."""
    error = " ".join(str(row["error"]).split())[:160]
    if row["kind"] == "email":
        return (f"{row['id']}\tuser={row['user_id']}\tmission={row['mission_id']}\t"
                f"message-id={row['message_id']}\tattempts={row['attempts']}\t{error}")
    return (f"{row['id']}\tevent={row['event_id']}\t{row['topic']}\t"
            f"attempts={row['attempts']}\treplayed={row['replayed_at'] or '-'}\t{error}")


async def replay(db: Database, dead_letter_id: int) -> bool:
    """Put the event back in the outbox; handlers that already succeeded stay skipped."""
    return await replay_any(db, DeadLetterId("event", dead_letter_id))


async def replay_email(db: Database, job_id: int) -> bool:
    """Queue a failed email again with a fresh set of attempts, under its Message-ID."""
    return await replay_any(db, DeadLetterId("email", job_id))


async def replay_any(db: Database, dead_letter: DeadLetterId) -> bool:
    """``operations.replay`` (what the operations page's button does) in a transaction of
    its own; False when there is no such dead letter or it was replayed already."""
    async with db.begin() as conn:
        try:
            answer = await operations.replay(conn, dead_letter, SystemClock().now())
        except NotFound:
            return False
    return bool(answer["replayed"])


async def replay_dead_letter(settings: Settings, dead_letter: DeadLetterId | int) -> bool:
    if isinstance(dead_letter, int):
        dead_letter = DeadLetterId("event", dead_letter)
    db = Database(settings.core_url, timeouts=Timeouts.of(settings))
    try:
        return await replay_any(db, dead_letter)
    finally:
        await db.dispose()
