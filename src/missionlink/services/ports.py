"""The database as callers that open their own transactions see it.

``adapters.db.engine.Database`` is one; the HTTP layer and the use cases that run their
own transactions (``idempotency.run``, ``wallet.stream_lines``) ask only for this, so
neither needs the engine, its pools or the tables.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")


class Transactions(Protocol):
    """Write transactions (``begin``, ``transaction`` with retries) and reads."""

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]: ...
    def read(self) -> AbstractAsyncContextManager[AsyncConnection]: ...
    def connect_readonly(self) -> AbstractAsyncContextManager[AsyncConnection]: ...
    async def transaction(
        self, work: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = ...
    ) -> T: ...
