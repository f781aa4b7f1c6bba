"""Pooled PostgreSQL connections start with a statement timeout, a lock timeout and an
idle-in-transaction timeout (``DB_*_TIMEOUT_MS``); 0 turns each off."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from missionlink.adapters.db.engine import Database, Timeouts
from missionlink.config import Settings, normalize_database_url

pytestmark = pytest.mark.parametrize(
    "database_urls", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)

QUERY_CANCELED = "57014"
LOCK_NOT_AVAILABLE = "55P03"


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _db(urls: dict[str, str], timeouts: Timeouts) -> Database:
    return Database(normalize_database_url(urls["MISSIONLINK_DATABASE_URL"]), pool_size=2,
                    timeouts=timeouts)


async def test_a_statement_longer_than_the_timeout_is_cancelled(
    database_urls: dict[str, str],
) -> None:
    db = _db(database_urls, Timeouts(statement_ms=300, lock_ms=10_000,
                                     idle_in_transaction_ms=60_000))
    try:
        async with db.begin() as conn:
            assert await conn.scalar(text("SHOW statement_timeout")) == "300ms"
            assert await conn.scalar(text("SHOW lock_timeout")) == "10s"
            assert await conn.scalar(text("SHOW idle_in_transaction_session_timeout")) == "1min"
        started = time.monotonic()
        with pytest.raises(DBAPIError) as caught:
            async with db.begin() as conn:
                await conn.execute(text("SELECT pg_sleep(5)"))
        assert _sqlstate(caught.value) == QUERY_CANCELED
        assert time.monotonic() - started < 3
        # The connection went back to the pool in working order, timeout and all.
        async with db.read() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
            assert await conn.scalar(text("SHOW statement_timeout")) == "300ms"
    finally:
        await db.dispose()


async def test_a_lock_wait_longer_than_the_lock_timeout_fails(
    database_urls: dict[str, str],
) -> None:
    holder = _db(database_urls, Timeouts(0, 0, 0))
    waiter = _db(database_urls, Timeouts(statement_ms=0, lock_ms=300, idle_in_transaction_ms=0))
    try:
        async with holder.begin() as conn:
            await conn.execute(text("CREATE TABLE timeout_probe (id int PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO timeout_probe VALUES (1)"))
        async with holder.begin() as held:
            await held.execute(text("SELECT id FROM timeout_probe WHERE id = 1 FOR UPDATE"))
            started = time.monotonic()
            with pytest.raises(DBAPIError) as caught:
                async with waiter.begin() as conn:
                    await conn.execute(text("UPDATE timeout_probe SET id = 2 WHERE id = 1"))
            assert _sqlstate(caught.value) == LOCK_NOT_AVAILABLE
            assert time.monotonic() - started < 3
            # SET LOCAL ... = DEFAULT (as the idempotency claim does) comes back to the
            # connection's own lock timeout, not the server's.
            async with waiter.begin() as conn:
                await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                await conn.execute(text("SET LOCAL lock_timeout = DEFAULT"))
                assert await conn.scalar(text("SHOW lock_timeout")) == "300ms"
    finally:
        await holder.dispose()
        await waiter.dispose()


async def test_an_idle_transaction_is_ended_by_the_server(
    database_urls: dict[str, str],
) -> None:
    db = _db(database_urls, Timeouts(statement_ms=0, lock_ms=0, idle_in_transaction_ms=300))
    try:
        async def idle_then_query() -> None:
            async with db.begin() as conn:
                await conn.execute(text("SELECT 1"))
                await asyncio.sleep(1.5)
                await conn.execute(text("SELECT 1"))

        with pytest.raises(DBAPIError):
            await idle_then_query()
        async with db.read() as conn:  # the pool replaces the ended connection
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await db.dispose()


async def test_zero_turns_the_timeouts_off(database_urls: dict[str, str]) -> None:
    db = _db(database_urls, Timeouts(0, 0, 0))
    try:
        async with db.read() as conn:
            assert await conn.scalar(text("SHOW statement_timeout")) == "0"
            assert await conn.scalar(text("SHOW lock_timeout")) == "0"
    finally:
        await db.dispose()


def test_the_defaults_come_from_the_settings(
    database_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = Settings()
    assert (defaults.db_statement_timeout_ms, defaults.db_lock_timeout_ms,
            defaults.db_idle_in_transaction_timeout_ms) == (30_000, 10_000, 60_000)
    monkeypatch.setenv("MISSIONLINK_DB_STATEMENT_TIMEOUT_MS", "1234")
    monkeypatch.setenv("MISSIONLINK_DB_LOCK_TIMEOUT_MS", "0")
    assert Timeouts.of(Settings()) == Timeouts(1234, 0, 60_000)
    assert Timeouts() == Timeouts.of(defaults)
