"""Async engines and transactions for the identity and core databases."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from missionlink.adapters.db.sql import OPTION, PostgresDialect, SqliteDialect

T = TypeVar("T")

#: SQLSTATEs worth retrying: serialization failure and deadlock.
RETRYABLE_SQLSTATES = {"40001", "40P01"}
#: SQLite connections per database and process, all kept open. SQLite lets one
#: transaction write at a time, so write transactions share ONE connection and wait for
#: it in the pool's FIFO queue (a coroutine each, not a thread polling the lock); reads
#: have connections of their own and never queue behind writes (WAL). Each aiosqlite
#: connection is a thread with its own stack, schema and page cache: before this split,
#: 15 connections per database that all waited on the write lock kept as many threads,
#: and glibc's per-thread heaps kept the memory of each.
SQLITE_WRITE_POOL_SIZE = 1
SQLITE_READ_POOL_SIZE = 4
#: Seconds a write transaction waits for the write connection (SQLite's own busy
#: timeout for another process holding the lock is separate, 10 s).
SQLITE_WRITE_WAIT_SECONDS = 30
#: A pooled PostgreSQL connection idle for longer than this is pinged before it is handed
#: out; one used more recently is not. Pinging every checkout (SQLAlchemy's
#: ``pool_pre_ping``) cost a round trip per request and, under load, a tenth of an API
#: process's CPU in the pledge profile. A connection that died less than this ago fails its
#: one request, and that failure invalidates the whole pool (see ``_ping_when_idle``).
PING_AFTER_IDLE_SECONDS = 1.0
#: Page cache per SQLite connection, in KiB (SQLite's default is 2,000). WAL drops a
#: connection's cache whenever another one commits, so on a busy database it holds little
#: but a scan's pages, and the file's pages stay in the kernel's cache anyway. Ten
#: connections (two databases, one writer and four readers each) at 1,024 KiB held about
#: 3 MiB more of the embedded default's memory soak than at 256 (bench/README.md).
SQLITE_CACHE_KIB = 256


@dataclass(frozen=True)
class Timeouts:
    """PostgreSQL session settings every pooled connection starts with; 0 turns one off.

    They are sent in the connection's startup packet, so they are the session's defaults:
    ``SET LOCAL lock_timeout = DEFAULT`` (and ``set_config(..., true)`` undone at commit)
    comes back to them. Migrations connect on their own and set their own.
    """

    statement_ms: int = 30_000
    lock_ms: int = 10_000
    idle_in_transaction_ms: int = 60_000

    @classmethod
    def of(cls, settings: Any) -> Timeouts:
        """``DB_STATEMENT_TIMEOUT_MS``, ``DB_LOCK_TIMEOUT_MS`` and
        ``DB_IDLE_IN_TRANSACTION_TIMEOUT_MS`` of ``settings``."""
        return cls(settings.db_statement_timeout_ms, settings.db_lock_timeout_ms,
                   settings.db_idle_in_transaction_timeout_ms)

    def server_settings(self) -> dict[str, str]:
        return {
            "statement_timeout": str(self.statement_ms),
            "lock_timeout": str(self.lock_ms),
            "idle_in_transaction_session_timeout": str(self.idle_in_transaction_ms),
        }


def _sqlite_setup(engine: AsyncEngine) -> None:
    """WAL, a busy timeout and ``BEGIN IMMEDIATE`` for writes (SQLAlchemy's pysqlite recipe)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a connection at checkout only if it sat idle past ``PING_AFTER_IDLE_SECONDS``
    (HikariCP's "alive bypass window"). A failed ping invalidates every pooled connection
    made before it, as ``pool_pre_ping`` does, and the pool connects afresh."""
    sync = engine.sync_engine

    @event.listens_for(sync, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or in use a moment ago
        try:
            alive = sync.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError(f"ping failed: {exc!r}") from exc
        if not alive:
            raise InvalidatePoolError("ping failed")


def _sqlite_engine(url: str, size: int, *, pool_timeout: float = 30) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=size,
                                 max_overflow=0, pool_timeout=pool_timeout,
                                 execution_options={OPTION: SqliteDialect()})
    _sqlite_setup(engine)
    return engine


def make_engine(url: str, *, pool_size: int = 10,
                timeouts: Timeouts | None = None) -> AsyncEngine:
    """An engine for ``url``; on PostgreSQL each connection starts with ``timeouts``
    (by default the settings'). On SQLite this is the write engine (one connection, see
    ``SQLITE_WRITE_POOL_SIZE``); ``Database`` adds a read engine beside it."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, SQLITE_WRITE_POOL_SIZE, pool_timeout=SQLITE_WRITE_WAIT_SECONDS)
    connect_args: dict[str, Any] = {}
    if make_url(url).get_driver_name() == "asyncpg":
        connect_args["server_settings"] = (timeouts or Timeouts()).server_settings()
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        # No overflow: connections opened past the pool are closed again on return, and
        # that churn (a new PostgreSQL backend each time) shows up as latency spikes.
        max_overflow=0,
        pool_timeout=10,
        pool_recycle=1800,
        connect_args=connect_args,
        # Where the two databases differ, the engine's connections carry the strategy.
        execution_options={OPTION: PostgresDialect()},
    )
    _ping_when_idle(engine)
    return engine


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code in RETRYABLE_SQLSTATES:
            return True
        return "database is locked" in str(exc.orig)
    return False


class Database:
    """One database: ``begin()`` for a write transaction, ``read()`` for reads.

    On SQLite reads go through ``reader``, an engine of their own
    (``SQLITE_READ_POOL_SIZE`` connections), and writes through ``engine``'s single
    connection; on PostgreSQL both are the same engine."""

    def __init__(self, url: str, *, pool_size: int = 10,
                 timeouts: Timeouts | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, timeouts=timeouts)
        self.reader = (_sqlite_engine(url, SQLITE_READ_POOL_SIZE) if url.startswith("sqlite")
                       else self.engine)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def server_now(self) -> datetime:
        """The database server's clock now (PostgreSQL's ``clock_timestamp()``)."""
        async with self.engine.connect() as conn:
            value = await conn.scalar(text("SELECT clock_timestamp()"))
        assert isinstance(value, datetime)
        return value

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.connect_readonly() as conn, conn.begin():
            yield conn

    @contextlib.asynccontextmanager
    async def connect_readonly(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only: its transactions start with a plain ``BEGIN``."""
        async with self.reader.connect() as conn:
            await conn.execution_options(readonly=True)
            yield conn

    async def transaction(
        self, work: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = 4
    ) -> T:
        """Run ``work`` in one transaction, retrying serialization failures and deadlocks."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.begin() as conn:
                    return await work(conn)
            except DBAPIError as exc:
                if attempt == attempts or not is_retryable(exc):
                    raise
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()
