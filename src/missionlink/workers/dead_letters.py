"""Operator tools for work that kept failing: list it, replay one item.

Two kinds share one list, told apart by the id's prefix: ``event:N`` is an outbox event
whose handler kept failing (a bare ``N`` still means an event), ``email:N`` is a result
email the mail server never accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update

from missionlink.adapters.db.core_tables import dead_letters, email_jobs, outbox
from missionlink.adapters.db.engine import Database, Timeouts
from missionlink.config import Settings
from missionlink.domain.clock import SystemClock

Kind = Literal["event", "email"]
_ID = re.compile(r"(?:(event|email):)?([0-9]{1,18})", re.ASCII)


@dataclass(frozen=True)
class DeadLetterId:
    kind: Kind
    number: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.number}"


def parse_id(text: str) -> DeadLetterId:
    """``event:12``, ``email:7`` or a bare ``12`` (a bare number is an event)."""
    match = _ID.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a dead letter id: {text!r} (expected event:N or email:N)")
    kind: Kind = "email" if match.group(1) == "email" else "event"
    return DeadLetterId(kind, int(match.group(2)))


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


async def replay_email(db: Database, job_id: int) -> bool:
    """Queue a failed email again with a fresh set of attempts.

    The job keeps its row, so the worker sends it under the same Message-ID and records
    it as sent like any other.
    """
    async with db.begin() as conn:
        result = await conn.execute(
            update(email_jobs)
            .where(email_jobs.c.id == job_id, email_jobs.c.status == "failed")
            .values(status="queued", attempts=0, lease_until=None)
        )
    return bool(result.rowcount)


async def replay_any(db: Database, dead_letter: DeadLetterId) -> bool:
    if dead_letter.kind == "email":
        return await replay_email(db, dead_letter.number)
    return await replay(db, dead_letter.number)


async def replay_dead_letter(settings: Settings, dead_letter: DeadLetterId | int) -> bool:
    if isinstance(dead_letter, int):
        dead_letter = DeadLetterId("event", dead_letter)
    db = Database(settings.core_url, timeouts=Timeouts.of(settings))
    try:
        return await replay_any(db, dead_letter)
    finally:
        await db.dispose()
