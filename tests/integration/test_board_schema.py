"""Migrations 0002 and 0010: the board tables match the code, and PostgreSQL gets trigram
indexes on post titles, post bodies and comment bodies."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from missionlink.adapters.db.board_tables import posts
from missionlink.bootstrap import Container
from missionlink.migrations.runner import check_all
from missionlink.services.board import search_clause

POSTGRES_ONLY = pytest.mark.parametrize(
    "database_urls", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def test_tables_in_code_match_the_migrations(container: Container) -> None:
    await asyncio.to_thread(check_all, container.settings)


@POSTGRES_ONLY
async def test_postgres_searches_posts_through_trigram_indexes(container: Container) -> None:
    async with container.core_db.read() as conn:
        rows = await conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'posts'"))
        defs = {r.indexname: r.indexdef for r in rows}
        rows = await conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'comments'"))
        defs.update({r.indexname: r.indexdef for r in rows})
    for name in ("ix_posts_title_trgm", "ix_posts_body_trgm", "ix_comments_body_trgm"):
        assert "gin_trgm_ops" in defs[name]
        assert "USING gin" in defs[name]


@POSTGRES_ONLY
@pytest.mark.parametrize("query", ["라면", "매운 라면", "Ramen night"])
async def test_the_search_query_can_use_the_trigram_indexes(
    container: Container, query: str
) -> None:
    stmt = select(posts.c.id).where(search_clause(query))
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    async with container.core_db.begin() as conn:
        # An empty table is always scanned; forbid that to see which indexes the query fits.
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(r[0] for r in await conn.execute(text("EXPLAIN " + sql)))
    assert "ix_posts_title_trgm" in plan and "ix_posts_body_trgm" in plan, plan
    assert "ix_comments_body_trgm" in plan, plan
