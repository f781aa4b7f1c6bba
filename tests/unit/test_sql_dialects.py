"""Where the databases differ, the engine's connections carry the strategy chosen from its
URL: claims skip locked rows and shared locks pass each other on PostgreSQL only."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from missionlink.adapters.db.core_tables import outbox
from missionlink.adapters.db.engine import Database, make_engine
from missionlink.adapters.db.sql import OPTION, PostgresDialect, SqliteDialect, dialect_of


async def test_the_url_chooses_the_strategy() -> None:
    engine = make_engine("postgresql+asyncpg://db/core")  # never connects
    try:
        assert isinstance(engine.sync_engine.get_execution_options()[OPTION], PostgresDialect)
    finally:
        await engine.dispose()


async def test_reads_and_writes_find_their_engines_strategy(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'core.db'}")
    try:
        async with db.read() as conn:
            assert isinstance(dialect_of(conn), SqliteDialect)
        async with db.begin() as conn:
            assert isinstance(dialect_of(conn), SqliteDialect)
    finally:
        await db.dispose()


def test_postgres_claims_skip_locked_rows_and_sqlite_needs_no_lock() -> None:
    stmt = select(outbox)
    pg = str(PostgresDialect().claim(stmt).compile(dialect=postgresql.dialect()))
    assert pg.endswith("FOR UPDATE SKIP LOCKED")
    shared = PostgresDialect().share_key(stmt).compile(dialect=postgresql.dialect())
    assert str(shared).endswith("FOR KEY SHARE")
    assert SqliteDialect().claim(stmt) is stmt and SqliteDialect().share_key(stmt) is stmt
