"""The embedded SQLite engine: durable settings and a fixed set of long-lived connections."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from missionlink.adapters.db.engine import SQLITE_CACHE_KIB, SQLITE_POOL_SIZE, Database


async def test_each_connection_keeps_wal_full_sync_and_a_bounded_page_cache(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/core.sqlite3")
    try:
        async with db.read() as conn:
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            sync = (await conn.execute(text("PRAGMA synchronous"))).scalar()
            cache = (await conn.execute(text("PRAGMA cache_size"))).scalar()
        assert (journal, sync, cache) == ("wal", 2, -SQLITE_CACHE_KIB)
    finally:
        await db.dispose()


async def test_a_burst_past_the_pool_waits_and_opens_no_further_connections(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/core.sqlite3")
    opened: list[Any] = []
    event.listen(db.engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))
    most = 0
    inside = 0

    async def read() -> None:
        nonlocal most, inside
        async with db.read() as conn:
            inside += 1
            most = max(most, inside)
            await conn.execute(text("SELECT 1"))
            await asyncio.sleep(0.01)
            inside -= 1

    try:
        for _ in range(2):
            await asyncio.gather(*(read() for _ in range(3 * SQLITE_POOL_SIZE)))
        assert most == SQLITE_POOL_SIZE
        assert len(opened) == SQLITE_POOL_SIZE
        assert db.engine.pool.checkedin() == SQLITE_POOL_SIZE  # type: ignore[attr-defined]
    finally:
        await db.dispose()
