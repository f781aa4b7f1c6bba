"""What SQLAlchemy Core spells differently per database, behind one small strategy each.

The strategy is chosen once, from the URL, when :func:`engine.make_engine` builds an
engine; every connection of that engine carries it (an execution option), so use cases
ask :func:`dialect_of` and never branch on the database's name themselves."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

S = TypeVar("S", bound=Select[Any])

#: The execution option under which an engine's connections carry their strategy.
OPTION = "missionlink_sql_dialect"


class SqlDialect(Protocol):
    """Where PostgreSQL and SQLite differ, in the few ways MissionLink needs."""

    name: str

    def insert(self, table: Table) -> Any:
        """An INSERT that can say ON CONFLICT."""

    def claim(self, stmt: S) -> S:
        """Rows one worker takes for itself while others take the next ones."""

    def share_key(self, stmt: S) -> S:
        """A row read under a lock that other sharers pass but an UPDATE of it waits for."""

    async def set_local(self, conn: AsyncConnection, setting: str, value: str) -> None:
        """A session setting for the rest of this transaction (``SET LOCAL``)."""


class PostgresDialect:
    name = "postgresql"

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def claim(self, stmt: S) -> S:
        return stmt.with_for_update(skip_locked=True)

    def share_key(self, stmt: S) -> S:
        # KEY SHARE: sharers never block each other; FOR UPDATE waits for them.
        return stmt.with_for_update(read=True, key_share=True)

    async def set_local(self, conn: AsyncConnection, setting: str, value: str) -> None:
        await conn.exec_driver_sql(f"SET LOCAL {setting} = {value}")


class SqliteDialect:
    """SQLite has no row locks: ``BEGIN IMMEDIATE`` (engine.py) runs one writer at a time,
    which is what claims and shared locks guard against; and no session settings."""

    name = "sqlite"

    def insert(self, table: Table) -> Any:
        return sqlite.insert(table)

    def claim(self, stmt: S) -> S:
        return stmt

    def share_key(self, stmt: S) -> S:
        return stmt

    async def set_local(self, conn: AsyncConnection, setting: str, value: str) -> None:
        return None


def dialect_of(conn: AsyncConnection) -> SqlDialect:
    """The strategy of the engine ``conn`` comes from."""
    chosen = conn.sync_engine.get_execution_options().get(OPTION)
    if chosen is None:  # an engine not made by make_engine (migrations, test set-up)
        return SqliteDialect() if conn.dialect.name == "sqlite" else PostgresDialect()
    assert isinstance(chosen, PostgresDialect | SqliteDialect)
    return chosen


async def insert_ignore(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT unless the row exists (ON CONFLICT DO NOTHING); True when inserted."""
    stmt = dialect_of(conn).insert(table).values(**values).on_conflict_do_nothing()
    result = await conn.execute(stmt)
    return bool(result.rowcount)


async def upsert_add(
    conn: AsyncConnection, table: Table, keys: dict[str, Any], increments: dict[str, int]
) -> None:
    """INSERT the row, or add ``increments`` to its columns when it exists (one statement)."""
    stmt = dialect_of(conn).insert(table).values(**keys, **increments)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={col: table.c[col] + stmt.excluded[col] for col in increments},
    )
    await conn.execute(stmt)
