"""Small dialect bridges for statements SQLAlchemy Core spells differently per database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_ignore(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT unless the row exists (ON CONFLICT DO NOTHING); True when inserted."""
    dialect = conn.dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).values(**values).on_conflict_do_nothing()
    result = await conn.execute(stmt)
    return bool(result.rowcount)


async def upsert_add(
    conn: AsyncConnection, table: Table, keys: dict[str, Any], increments: dict[str, int]
) -> None:
    """INSERT the row, or add ``increments`` to its columns when it exists (one statement)."""
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table).values(**keys, **increments)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={col: table.c[col] + stmt.excluded[col] for col in increments},
    )
    await conn.execute(stmt)
