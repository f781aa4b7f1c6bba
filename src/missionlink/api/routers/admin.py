"""Admin-only operations: the figures the operations page shows, and dead-letter replay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.security.tokens import AccessClaims
from missionlink.api.deps import CurrentUser, Deps, IdempotencyKey
from missionlink.api.effects import run_effect
from missionlink.api.schemas.operations import DEAD_LETTER_ID, Operations, Replayed
from missionlink.domain.errors import Forbidden
from missionlink.services import operations
from missionlink.services.operations import parse_id

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


async def admin_user(user: CurrentUser) -> AccessClaims:
    if user.role != "admin":
        raise Forbidden("only admins see operations")
    return user


Admin = Annotated[AccessClaims, Depends(admin_user)]


@router.get("/operations", response_model=Operations)
async def get_operations(request: Request, _: Admin, c: Deps) -> dict[str, Any]:
    """Request rate and errors, outbox backlog and lag, dead letters, email failures, the
    last reconcile, open missions and money in escrow. ``process`` comes from this
    process's metrics (one replica's when several serve); the rest from the database."""
    async with c.core_db.read() as conn:
        return await operations.snapshot(
            conn, now=c.clock.now(),
            worker_in_process=getattr(request.app.state, "worker", None) is not None,
            reconcile_interval=c.settings.reconcile_interval_seconds,
        )


@router.post("/dead-letters/{dead_letter_id}/replay", response_model=Replayed)
async def replay_dead_letter(
    dead_letter_id: Annotated[str, Path(pattern=DEAD_LETTER_ID, max_length=24,
                                        description="`event:N` or `email:N`")],
    request: Request, user: Admin, c: Deps, key: IdempotencyKey,
) -> JSONResponse:
    """Queue a dead letter again, as ``missionlink dead-letters replay`` does. Replaying one
    that was replayed already changes nothing (``replayed: false``)."""
    target = parse_id(dead_letter_id)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await operations.replay(conn, target, c.clock.now())

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work)
