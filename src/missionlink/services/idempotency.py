"""Idempotency keys: the key row is inserted in the same transaction as the effect.

A concurrent duplicate blocks on the key's unique index until the first commits (then it
replays the stored response) or rolls back (then it runs). On PostgreSQL the wait is
bounded by a lock timeout, after which the duplicate gets 409 "still running".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import idempotency_keys
from missionlink.adapters.db.sql import dialect_of, insert_ignore
from missionlink.domain.errors import IdempotencyInProgress, IdempotencyMismatch
from missionlink.services.ports import Transactions

LOCK_NOT_AVAILABLE = "55P03"
#: How long a duplicate waits for the first request holding its key (PostgreSQL).
KEY_WAIT = "2s"


def key_reused() -> IdempotencyMismatch:
    return IdempotencyMismatch(
        "this Idempotency-Key was already used with a different request body or path"
    )


def still_running() -> IdempotencyInProgress:
    return IdempotencyInProgress("a request with this Idempotency-Key is still running")


def still_waiting() -> IdempotencyInProgress:
    """The duplicate waited ``KEY_WAIT`` for the first request and gave up."""
    return IdempotencyInProgress(
        "a request with this Idempotency-Key is still being processed; retry shortly"
    )


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any
    replayed: bool = False


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


Work = Callable[[AsyncConnection], Awaitable[tuple[int, Any]]]


async def run(
    db: Transactions,
    *,
    user_id: int,
    key: str | None,
    fingerprint_: str,
    now: datetime,
    ttl_seconds: int,
    work: Work,
) -> StoredResponse:
    """Run ``work`` once per (user, key); replay its response for a repeat."""
    if key is None:
        status, body = await db.transaction(work)
        return StoredResponse(status, body)

    async def tx(conn: AsyncConnection) -> StoredResponse:
        stored = await _claim(conn, user_id, key, fingerprint_, now, ttl_seconds)
        if stored is not None:
            return stored
        status, body = await work(conn)
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
            .values(status_code=status, response_body=json.dumps(body))
        )
        return StoredResponse(status, body)

    try:
        return await db.transaction(tx)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise still_waiting() from exc
        raise


async def _claim(
    conn: AsyncConnection, user_id: int, key: str, fp: str, now: datetime, ttl: int
) -> StoredResponse | None:
    dialect = dialect_of(conn)
    await dialect.set_local(conn, "lock_timeout", f"'{KEY_WAIT}'")
    row_values = {"user_id": user_id, "key": key, "fingerprint": fp, "created_at": now}
    inserted = await insert_ignore(conn, idempotency_keys, row_values)
    await dialect.set_local(conn, "lock_timeout", "DEFAULT")
    if inserted:
        return None
    row = (
        await conn.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
            )
        )
    ).one()
    if row.created_at <= now - timedelta(seconds=ttl):
        # An expired key is forgotten: this request starts afresh.
        await conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
            )
        )
        await insert_ignore(conn, idempotency_keys, row_values)
        return None
    if row.fingerprint != fp:
        raise key_reused()
    if row.status_code is None:
        raise still_running()
    return StoredResponse(row.status_code, json.loads(row.response_body), replayed=True)


async def purge_expired(conn: AsyncConnection, now: datetime, ttl_seconds: int) -> int:
    result = await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.created_at < now - timedelta(seconds=ttl_seconds)
        )
    )
    return int(result.rowcount or 0)
