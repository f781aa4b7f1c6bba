"""Pooled PostgreSQL connections are pinged at checkout only after sitting idle
(``PING_AFTER_IDLE_SECONDS``): a busy pool makes no extra round trip per request, and a
connection the server dropped while it was idle is replaced without a failed request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from missionlink.adapters.db import engine as engine_module
from missionlink.adapters.db.engine import Database, Timeouts
from missionlink.config import normalize_database_url

pytestmark = pytest.mark.parametrize(
    "database_urls", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def _db(urls: dict[str, str]) -> Database:
    return Database(normalize_database_url(urls["MISSIONLINK_DATABASE_URL"]), pool_size=1,
                    timeouts=Timeouts())


def _count_pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    pings: list[Any] = []
    dialect = db.engine.sync_engine.dialect
    real = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


async def test_a_connection_in_use_a_moment_ago_is_not_pinged(
    database_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 60.0)
    db = _db(database_urls)
    pings = _count_pings(db, monkeypatch)
    try:
        for _ in range(20):
            async with db.read() as conn:
                assert await conn.scalar(text("SELECT 1")) == 1
        assert pings == []
    finally:
        await db.dispose()


async def test_a_connection_dropped_while_idle_is_replaced_without_a_failed_request(
    database_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.2)
    db = _db(database_urls)
    pings = _count_pings(db, monkeypatch)
    try:
        async with db.read() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        # The server ends that session (a restart, a failover, an idle timeout upstream).
        killer = _db(database_urls)
        try:
            async with killer.begin() as conn:
                assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"),
                                         {"pid": first})
        finally:
            await killer.dispose()
        await asyncio.sleep(0.4)
        async with db.read() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
        assert len(pings) == 1  # the idle connection was pinged, failed, and was replaced
    finally:
        await db.dispose()
