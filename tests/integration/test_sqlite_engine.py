"""The embedded SQLite engine: durable settings, one write connection and a fixed set of
long-lived read connections."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from missionlink.adapters.db.engine import (
    SQLITE_CACHE_KIB,
    SQLITE_READ_POOL_SIZE,
    SQLITE_WRITE_POOL_SIZE,
    Database,
)


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


async def test_a_burst_of_reads_waits_for_the_read_pool_and_opens_no_more(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/core.sqlite3")
    opened: list[Any] = []
    event.listen(db.reader.sync_engine, "connect", lambda conn, _record: opened.append(conn))
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
            await asyncio.gather(*(read() for _ in range(3 * SQLITE_READ_POOL_SIZE)))
        assert most == SQLITE_READ_POOL_SIZE
        assert len(opened) == SQLITE_READ_POOL_SIZE
        assert db.reader.pool.checkedin() == SQLITE_READ_POOL_SIZE  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def test_writes_take_turns_on_one_connection_and_reads_do_not_wait_for_them(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/core.sqlite3")
    opened: list[Any] = []
    event.listen(db.engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))
    async with db.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER NOT NULL)"))
    most = 0
    inside = 0

    async def write(n: int) -> None:
        nonlocal most, inside
        async with db.begin() as conn:
            inside += 1
            most = max(most, inside)
            await conn.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.005)
            inside -= 1

    try:
        await asyncio.gather(*(write(n) for n in range(20)))
        assert most == SQLITE_WRITE_POOL_SIZE == 1
        assert len(opened) == 1
        # A write transaction held open does not keep a reader out (WAL): the read sees
        # the last commit, not the open transaction's row.
        async with db.begin() as writing:
            await writing.execute(text("INSERT INTO t (n) VALUES (-1)"))
            async with asyncio.timeout(2), db.read() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 20
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 21
    finally:
        await db.dispose()
