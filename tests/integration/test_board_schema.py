"""Migration 0002: the board tables match the code, and PostgreSQL gets trigram indexes."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from missionlink.bootstrap import Container
from missionlink.migrations.runner import check_all


async def test_tables_in_code_match_the_migrations(container: Container) -> None:
    await asyncio.to_thread(check_all, container.settings)


@pytest.mark.parametrize(
    "database_urls", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_postgres_searches_posts_through_trigram_indexes(container: Container) -> None:
    async with container.core_db.read() as conn:
        rows = await conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'posts'"))
        defs = {r.indexname: r.indexdef for r in rows}
    for column in ("title", "body"):
        assert "gin_trgm_ops" in defs[f"ix_posts_{column}_trgm"]
        assert "USING gin" in defs[f"ix_posts_{column}_trgm"]
