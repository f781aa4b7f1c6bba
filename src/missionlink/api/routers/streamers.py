"""Streamer directory and a streamer's own channel settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from missionlink.api import read_cache
from missionlink.api.deps import CurrentStreamer, Deps
from missionlink.api.pagination import PageParams, encode_int
from missionlink.api.params import PathId
from missionlink.api.read_cache import NOT_MODIFIED
from missionlink.api.schemas.core import ChannelSettingsIn
from missionlink.domain.errors import InvalidInput
from missionlink.services import channels, read_model
from missionlink.services.read_model import Loaded

router = APIRouter(prefix="/api/v1/streamers", tags=["streamers"])


@router.get("", response_model=dict[str, Any], responses=NOT_MODIFIED)
async def directory(request: Request, c: Deps, page: PageParams) -> Response:
    # ``live`` turns on when an overlay connects (the stream announces it) and off by the
    # TTL once its heartbeats stop.
    async def load() -> Loaded:
        async with c.core_db.read() as conn:
            items, nxt = await channels.list_streamers(
                conn, now=c.clock.now(), limit=page.limit, after_id=page.int_cursor()
            )
        return Loaded({"items": items, "next_cursor": encode_int(nxt)},
                      frozenset({read_model.DIRECTORY_TAG}))

    key = ("streamers", page.limit, page.int_cursor())
    return await read_cache.cached(request, c, key, load)


@router.get("/me/settings")
async def my_settings(user: CurrentStreamer, c: Deps) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        return await channels.get_settings(conn, user.user_id)


@router.patch("/me/settings")
async def update_settings(
    body: ChannelSettingsIn, user: CurrentStreamer, c: Deps
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if any(v is None for v in changes.values()):
        raise InvalidInput("settings may not be set to null")
    async with c.core_db.begin() as conn:
        updated = await channels.update_settings(
            conn, streamer_id=user.user_id, changes=changes, now=c.clock.now(),
            min_pledge=c.settings.min_pledge, max_pledge=c.settings.max_pledge,
            max_mission_seconds=c.settings.max_mission_seconds,
        )
    await c.read_cache.announce(c.broker, {read_model.DIRECTORY_TAG,
                                           read_model.channel_tag(user.user_id)})
    return updated


@router.get("/{streamer_id}", response_model=dict[str, Any], responses=NOT_MODIFIED)
async def show(streamer_id: PathId, request: Request, c: Deps) -> Response:
    async def load() -> Loaded:
        async with c.core_db.read() as conn:
            channel = await channels.get_streamer(conn, streamer_id, c.clock.now())
        return Loaded(channel, frozenset({read_model.channel_tag(streamer_id)}))

    return await read_cache.cached(request, c, ("streamer", streamer_id), load)
