"""Shared Alembic environment: async engines, batch mode on SQLite, lock timeouts on PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

#: Indexes that migrations create by hand (PostgreSQL trigram GIN indexes, whose operator
#: classes autogenerate cannot compare); ``alembic check`` leaves them alone.
UNMANAGED_INDEXES = frozenset({"ix_posts_title_trgm", "ix_posts_body_trgm",
                               "ix_members_display_name_trgm",
                               "ix_comments_body_trgm"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (type_ == "index" and reflected and name in UNMANAGED_INDEXES)


def _configure_and_run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,
        include_object=include_object,
    )
    if connection.dialect.name == "postgresql":
        # Never wait forever behind live traffic for a lock, nor run away with a statement.
        connection.exec_driver_sql("SET lock_timeout = '10s'")
        connection.exec_driver_sql("SET statement_timeout = '10min'")
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as conn:
        await conn.run_sync(_configure_and_run, metadata)
        await conn.commit()
    await engine.dispose()


def run(metadata: MetaData) -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set by missionlink.migrations.runner"
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_async(url, metadata))
