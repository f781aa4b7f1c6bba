"""Missions: propose, co-fund, accept/reject/cancel, declare the result, predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.api import read_cache
from missionlink.api.context import AppContext
from missionlink.api.deps import CurrentUser, Deps, IdempotencyKey, OptionalUser
from missionlink.api.effects import request_path, respond, run_effect
from missionlink.api.pagination import PageParams, encode_int
from missionlink.api.params import PathId, QueryId
from missionlink.api.read_cache import NOT_MODIFIED
from missionlink.api.schemas.core import BetIn, MissionIn, PledgeIn, RejectIn, ResultIn
from missionlink.domain.errors import InvalidInput, range_error
from missionlink.domain.missions import Action, Status
from missionlink.services import channels, idempotency, missions, predictions, read_model
from missionlink.services.mission_views import get_mission, list_backers, list_missions
from missionlink.services.read_model import Loaded

router = APIRouter(prefix="/api/v1/missions", tags=["missions"])


@router.post("", status_code=201)
async def create(
    body: MissionIn, request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey
) -> JSONResponse:
    await c.limiter.hit(f"pledge:{user.user_id}",
                        limit=c.settings.rate_limit_pledges_per_minute, window=60,
                        what="pledges")
    s = c.settings
    # Every out-of-range field at once, each with its bounds (the use case checks again).
    InvalidInput.raise_any([
        range_error("amount", body.amount, s.min_pledge, s.max_pledge, unit="KRW"),
        range_error("duration_seconds", body.duration_seconds, s.min_mission_seconds,
                    s.max_mission_seconds),
    ])

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await channels.check_mission_floor(conn, streamer_id=body.streamer_id,
                                           creator_id=user.user_id, amount=body.amount)
        return await missions.create_mission(
            conn, settings=c.settings, now=c.clock.now(), creator_id=user.user_id,
            streamer_id=body.streamer_id, title=body.title,
            description=body.description, amount=body.amount,
            duration_seconds=body.duration_seconds,
        )

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.get("", response_model=dict[str, Any], responses=NOT_MODIFIED)
async def index(
    request: Request, c: Deps, page: PageParams, streamer_id: QueryId | None = None,
    status: Status | None = None,
) -> Response:
    async def load() -> Loaded:
        async with c.core_db.read() as conn:
            items, nxt = await list_missions(
                conn, now=c.clock.now(), limit=page.limit, before_id=page.int_cursor(),
                streamer_id=streamer_id, status=status,
            )
        tags = {read_model.MISSIONS_TAG, *(read_model.mission_tag(m["id"]) for m in items)}
        if streamer_id is not None:
            tags.add(read_model.channel_tag(streamer_id))
        return Loaded({"items": items, "next_cursor": encode_int(nxt)}, frozenset(tags),
                      read_model.earliest(read_model.next_status_change(m) for m in items))

    if status is not None:
        # Which missions a status filter selects moves with the clock, outside the page.
        return read_cache.respond(request, read_model.entry_of(await load(), 0.0))
    key = ("missions", streamer_id, page.limit, page.int_cursor())
    return await read_cache.cached(request, c, key, load)


@router.get("/{mission_id}", response_model=dict[str, Any], responses=NOT_MODIFIED)
async def show(mission_id: PathId, request: Request) -> Response:
    # The container without ``Deps``: each dependency costs FastAPI a per-request pass that
    # the profile shows at about a tenth of this route's time.
    c: AppContext = request.app.state.container

    async def load() -> Loaded:
        async with c.core_db.read() as conn:
            mission = await get_mission(conn, mission_id, c.clock.now())
        tags = {read_model.mission_tag(mission_id), read_model.channel_tag(mission["streamer_id"])}
        return Loaded(mission, frozenset(tags), read_model.next_status_change(mission))

    return await read_cache.cached(request, c, ("mission", mission_id), load)


@router.post("/{mission_id}/pledges", status_code=201)
async def pledge(
    mission_id: PathId, body: PledgeIn, request: Request, user: CurrentUser, c: Deps,
    key: IdempotencyKey,
) -> JSONResponse:
    await c.limiter.hit(f"pledge:{user.user_id}",
                        limit=c.settings.rate_limit_pledges_per_minute, window=60,
                        what="pledges")
    # The bounds as a coded field error (the pledge desk checks them again); the hot path
    # pays for one comparison only.
    s = c.settings
    if not s.min_pledge <= body.amount <= s.max_pledge:
        InvalidInput.raise_any([range_error("amount", body.amount, s.min_pledge, s.max_pledge,
                                            unit="KRW")])
    fingerprint = idempotency.fingerprint(request.method, request_path(request),
                                          await request.body())
    stored = await c.pledges.place(
        now=c.clock.now(), user_id=user.user_id, mission_id=mission_id, amount=body.amount,
        key=key, fingerprint=fingerprint, message=body.message, anonymous=body.anonymous,
    )
    return await respond(c, stored)


@router.post("/{mission_id}/pledges/{pledge_id}/hide")
async def hide_pledge_message(
    mission_id: PathId, pledge_id: PathId, request: Request, user: CurrentUser, c: Deps,
    key: IdempotencyKey,
) -> JSONResponse:
    """The mission's streamer hides a pledge's message from the mission page, the backers
    list and the live streams; the pledge stays. Hiding it again answers the same."""
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await missions.hide_message(conn, now=c.clock.now(), actor_id=user.user_id,
                                           mission_id=mission_id, pledge_id=pledge_id)

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work)


@router.get("/{mission_id}/pledges", response_model=dict[str, Any], responses=NOT_MODIFIED)
async def backers(mission_id: PathId, request: Request, c: Deps, page: PageParams) -> Response:
    async def load() -> Loaded:
        async with c.core_db.read() as conn:
            items, nxt = await list_backers(conn, mission_id, limit=page.limit,
                                            before_id=page.int_cursor())
        return Loaded({"items": items, "next_cursor": encode_int(nxt)},
                      frozenset({read_model.mission_tag(mission_id)}))

    key = ("backers", mission_id, page.limit, page.int_cursor())
    return await read_cache.cached(request, c, key, load)


async def _transition(
    mission_id: int, action: Action, request: Request, user: Any, c: Deps, key: str | None,
    *, reason: str | None = None,
) -> JSONResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await missions.transition(conn, now=c.clock.now(), actor_id=user.user_id,
                                         mission_id=mission_id, action=action,
                                         reason=reason)

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work)


@router.post("/{mission_id}/accept")
async def accept(
    mission_id: PathId, request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey
) -> JSONResponse:
    return await _transition(mission_id, Action.accept, request, user, c, key)


@router.post("/{mission_id}/reject")
async def reject(
    mission_id: PathId, request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey,
    body: RejectIn | None = None,
) -> JSONResponse:
    """The body is optional: ``{"reason": ...}`` is what backers see with their refund."""
    reason = body.reason if body is not None else None
    return await _transition(mission_id, Action.reject, request, user, c, key,
                             reason=reason or None)


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
            conn, bet_window_seconds=c.settings.bet_window_seconds, now=c.clock.now(),
            user_id=user.user_id, mission_id=mission_id, side=body.side, points=body.points,
        )

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.get("/{mission_id}/prediction", response_model=dict[str, Any],
            responses=NOT_MODIFIED)
async def prediction(
    mission_id: PathId, request: Request, c: Deps, user: OptionalUser
) -> dict[str, Any] | Response:
    if user is not None:
        # Carries the caller's own bet: never from, nor into, the shared read model.
        async with c.core_db.read() as conn:
            return await predictions.prediction(conn, mission_id=mission_id,
                                                viewer_id=user.user_id)

    async def load() -> Loaded:
        async with c.core_db.read() as conn:
            pools = await predictions.prediction(conn, mission_id=mission_id, viewer_id=None)
        return Loaded(pools, frozenset({read_model.mission_tag(mission_id)}))

    return await read_cache.cached(request, c, ("prediction", mission_id), load)
