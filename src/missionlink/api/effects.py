"""Run a state-changing use case once per Idempotency-Key and wake the worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.bootstrap import Container
from missionlink.services import idempotency

WAKE_CHANNEL = "outbox"


async def run_effect(
    request: Request,
    container: Container,
    *,
    user_id: int,
    key: str | None,
    work: Callable[[AsyncConnection], Awaitable[Any]],
    status_code: int = 200,
) -> JSONResponse:
    body = await request.body()
    fp = idempotency.fingerprint(request.method, request.url.path, body)

    async def tx(conn: AsyncConnection) -> tuple[int, Any]:
        return status_code, await work(conn)

    stored = await idempotency.run(
        container.core_db,
        user_id=user_id,
        key=key,
        fingerprint_=fp,
        now=container.clock.now(),
        ttl_seconds=container.settings.idempotency_ttl_seconds,
        work=tx,
    )
    return await respond(container, stored)


async def respond(container: Container, stored: idempotency.StoredResponse) -> JSONResponse:
    """The (possibly replayed) response; a new effect also wakes the worker."""
    headers = {}
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:
        await container.broker.publish(WAKE_CHANNEL, {"wake": True})
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)
