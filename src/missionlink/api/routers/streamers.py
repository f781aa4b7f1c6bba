"""Streamer directory and a streamer's own channel settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from missionlink.api.deps import CurrentStreamer, Deps
from missionlink.api.pagination import PageParams, encode_int
from missionlink.api.params import PathId
from missionlink.api.schemas.core import ChannelSettingsIn
from missionlink.domain.errors import InvalidInput
from missionlink.services import channels

router = APIRouter(prefix="/api/v1/streamers", tags=["streamers"])


@router.get("")
async def directory(c: Deps, page: PageParams) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        items, nxt = await channels.list_streamers(
            conn, now=c.clock.now(), limit=page.limit, after_id=page.int_cursor()
        )
    return {"items": items, "next_cursor": encode_int(nxt)}


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
        return await channels.update_settings(
            conn, settings=c.settings, streamer_id=user.user_id, changes=changes,
            now=c.clock.now(),
        )


@router.get("/{streamer_id}")
async def show(streamer_id: PathId, c: Deps) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        return await channels.get_streamer(conn, streamer_id, c.clock.now())
