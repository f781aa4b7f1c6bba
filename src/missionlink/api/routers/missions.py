"""Missions: propose, co-fund, accept/reject/cancel, declare the result, predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.api.deps import CurrentUser, Deps, IdempotencyKey, OptionalUser
from missionlink.api.effects import respond, run_effect
from missionlink.api.pagination import PageParams, encode_int
from missionlink.api.params import PathId, QueryId
from missionlink.api.schemas.core import BetIn, MissionIn, PledgeIn, ResultIn
from missionlink.domain.missions import Action, Status
from missionlink.services import idempotency, missions, predictions
from missionlink.services.mission_queries import get_mission, list_backers, list_missions

router = APIRouter(prefix="/api/v1/missions", tags=["missions"])


@router.post("", status_code=201)
async def create(
    body: MissionIn, request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey
) -> JSONResponse:
    await c.limiter.hit(f"pledge:{user.user_id}",
                        limit=c.settings.rate_limit_pledges_per_minute, window=60,
                        what="pledges")

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await missions.create_mission(
            conn, settings=c.settings, now=c.clock.now(), creator_id=user.user_id,
            streamer_id=body.streamer_id, title=body.title,
            description=body.description, amount=body.amount,
            duration_seconds=body.duration_seconds,
        )

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.get("")
async def index(
    c: Deps, page: PageParams, streamer_id: QueryId | None = None, status: Status | None = None
) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        items, nxt = await list_missions(
            conn, now=c.clock.now(), limit=page.limit, before_id=page.int_cursor(),
            streamer_id=streamer_id, status=status,
        )
    return {"items": items, "next_cursor": encode_int(nxt)}


@router.get("/{mission_id}")
async def show(mission_id: PathId, c: Deps) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        return await get_mission(conn, mission_id, c.clock.now())


@router.post("/{mission_id}/pledges", status_code=201)
async def pledge(
    mission_id: PathId, body: PledgeIn, request: Request, user: CurrentUser, c: Deps,
    key: IdempotencyKey,
) -> JSONResponse:
    await c.limiter.hit(f"pledge:{user.user_id}",
                        limit=c.settings.rate_limit_pledges_per_minute, window=60,
                        what="pledges")
    if c.core_db.is_postgres:
        fingerprint = idempotency.fingerprint(request.method, request.url.path,
                                              await request.body())
        stored = await missions.pledge_in_one_statement(
            c.core_db, settings=c.settings, now=c.clock.now(), user_id=user.user_id,
            mission_id=mission_id, amount=body.amount, key=key, fingerprint=fingerprint,
        )
        return await respond(c, stored)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await missions.pledge(conn, settings=c.settings, now=c.clock.now(),
                                     user_id=user.user_id, mission_id=mission_id,
                                     amount=body.amount)

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.get("/{mission_id}/pledges")
async def backers(mission_id: PathId, c: Deps, page: PageParams) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        items, nxt = await list_backers(conn, mission_id, limit=page.limit,
                                        before_id=page.int_cursor())
    return {"items": items, "next_cursor": encode_int(nxt)}


async def _transition(
    mission_id: int, action: Action, request: Request, user: Any, c: Deps, key: str | None
) -> JSONResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await missions.transition(conn, now=c.clock.now(), actor_id=user.user_id,
                                         mission_id=mission_id, action=action)

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work)


@router.post("/{mission_id}/accept")
async def accept(
    mission_id: PathId, request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey
) -> JSONResponse:
    return await _transition(mission_id, Action.accept, request, user, c, key)


@router.post("/{mission_id}/reject")
async def reject(
    mission_id: PathId, request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey
) -> JSONResponse:
    return await _transition(mission_id, Action.reject, request, user, c, key)


@router.post("/{mission_id}/cancel")
async def cancel(
    mission_id: PathId, request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey
) -> JSONResponse:
    return await _transition(mission_id, Action.cancel, request, user, c, key)


@router.post("/{mission_id}/result")
async def result(
    mission_id: PathId, body: ResultIn, request: Request, user: CurrentUser, c: Deps,
    key: IdempotencyKey,
) -> JSONResponse:
    action = Action.succeed if body.outcome == "success" else Action.fail
    return await _transition(mission_id, action, request, user, c, key)


@router.post("/{mission_id}/bets", status_code=201)
async def bet(
    mission_id: PathId, body: BetIn, request: Request, user: CurrentUser, c: Deps,
    key: IdempotencyKey,
) -> JSONResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await predictions.place_bet(
            conn, settings=c.settings, now=c.clock.now(), user_id=user.user_id,
            mission_id=mission_id, side=body.side, points=body.points,
        )

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.get("/{mission_id}/prediction")
async def prediction(mission_id: PathId, c: Deps, user: OptionalUser) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        return await predictions.prediction(
            conn, mission_id=mission_id, viewer_id=user.user_id if user else None
        )
