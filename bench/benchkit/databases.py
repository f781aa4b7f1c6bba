"""The PostgreSQL server a benchmark runs on: its admin URL, the run's own uniquely named
databases (created, and dropped also on failure), and facts about the server."""

from __future__ import annotations

import os
import sys

import asyncpg
from sqlalchemy.engine import make_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def admin_url() -> str:
    return os.environ.get("MISSIONLINK_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)


def redis_url() -> str:
    return os.environ.get("MISSIONLINK_BENCH_REDIS_URL", DEFAULT_REDIS_URL)


def db_url(admin: str, name: str) -> str:
    """The admin URL pointed at database ``name``, password kept, plain ``postgresql://``."""
    url = make_url(admin).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


def _admin_db(admin: str) -> str:
    return db_url(admin, make_url(admin).database or "postgres")


async def admin_exec(admin: str, sql: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE) on the admin database."""
    conn = await asyncpg.connect(_admin_db(admin))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_databases(admin: str, prefix: str, roles: list[str],
                           made: list[str]) -> dict[str, str]:
    """``{prefix}_{role}`` for each role, each name appended to ``made`` as soon as it
    exists (so ``drop_databases(admin, made)`` undoes a partial run); role -> URL."""
    urls = {}
    for role in roles:
        name = f"{prefix}_{role}"
        await admin_exec(admin, f'CREATE DATABASE "{name}"')
        made.append(name)
        urls[role] = db_url(admin, name)
    return urls


async def drop_databases(admin: str, names: list[str]) -> None:
    """Drop every name in ``names`` (emptying the list); one failure does not stop the rest."""
    while names:
        name = names.pop()
        try:
            await admin_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:
            print(f"bench: could not drop database {name}: {exc}", file=sys.stderr)


async def server_facts(admin: str) -> dict[str, str]:
    """The server's version and the settings that decide what a commit costs."""
    conn = await asyncpg.connect(_admin_db(admin))
    try:
        facts = {"server_version": await conn.fetchval("SHOW server_version")}
        for name in ("synchronous_commit", "fsync", "shared_buffers", "max_connections",
                     "wal_sync_method"):
            facts[name] = await conn.fetchval(f"SHOW {name}")
        return facts
    finally:
        await conn.close()


async def pg_sessions(admin: str, database: str) -> int:
    """Sessions ever opened on ``database`` (PostgreSQL 14+): new ones mean pool churn."""
    conn = await asyncpg.connect(_admin_db(admin))
    try:
        value = await conn.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1", database)
        return int(value or 0)
    except asyncpg.PostgresError:
        return 0
    finally:
        await conn.close()
