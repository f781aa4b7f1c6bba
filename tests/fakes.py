"""Fakes for outside services: tests pick them, the product never does."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any


class MemoryMailer:
    """Keeps sent messages in a list; can be told to fail the next N sends."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail_next = 0

    async def send(self, message: EmailMessage) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("mail server unavailable (fake)")
        self.sent.append(message)

    async def close(self) -> None:
        return None

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sent if str(m["To"]).endswith(f"<{address}>") or m["To"] == address]


class MemoryCore:
    """The core database in memory for use-case tests: SQLite ``:memory:`` with the schema
    of the table definitions (CHECKs, keys and uniques included), one shared connection,
    a transaction per :meth:`unit` that commits on success and rolls back on an error,
    like ``Database.begin``. Milliseconds per test, no files, no migrations."""

    def __init__(self) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import StaticPool

        from missionlink.adapters.db.sql import OPTION, SqliteDialect

        self.engine = create_async_engine(
            "sqlite+aiosqlite://", poolclass=StaticPool,
            execution_options={OPTION: SqliteDialect()},
        )

    async def create(self) -> MemoryCore:
        from missionlink.adapters.db import (
            board_tables,  # noqa: F401  (its tables join the core's)
            payout_tables,  # noqa: F401
        )
        from missionlink.adapters.db.core_tables import core_metadata

        async with self.engine.begin() as conn:
            await conn.run_sync(core_metadata.create_all)
        return self

    def unit(self) -> Any:
        return self.engine.begin()

    async def close(self) -> None:
        await self.engine.dispose()
