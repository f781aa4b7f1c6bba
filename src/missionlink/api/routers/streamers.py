"""Streamer directory (searchable by name), a streamer's own channel settings and public
profile, and a channel's top backers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import AfterValidator

from missionlink.api import read_cache
from missionlink.api.deps import CurrentStreamer, Deps
from missionlink.api.pagination import PageParams, encode_int
from missionlink.api.params import PathId
from missionlink.api.read_cache import NOT_MODIFIED
from missionlink.api.schemas.core import ChannelSettingsIn
from missionlink.api.schemas.profile import ProfileIn, ProfileOut, TopBackersOut
from missionlink.api.schemas.text import optional_cleaner, schema
from missionlink.domain.errors import FieldError, InvalidInput
from missionlink.domain.profile import NAME_SEARCH
from missionlink.services import channels, read_model, top_backers
from missionlink.services.read_model import Loaded

router = APIRouter(prefix="/api/v1/streamers", tags=["streamers"])


#: Streamers whose display name contains this text, case-insensitively; empty lists all.
SearchQuery = Annotated[str | None, Query(json_schema_extra=schema(NAME_SEARCH)),
                        AfterValidator(optional_cleaner(NAME_SEARCH))]


@router.get("", response_model=dict[str, Any], responses=NOT_MODIFIED)
async def directory(request: Request, c: Deps, page: PageParams,
                    q: SearchQuery = None) -> Response:
    # ``live`` turns on when an overlay connects (the stream announces it) and off by the
    # TTL once its heartbeats stop.
    query = q or None
    after = page.int_cursor()

    async def load() -> Loaded:
        async with c.core_db.read() as conn:
            items, nxt = await channels.list_streamers(
                conn, now=c.clock.now(), limit=page.limit, after_id=after, query=query
            )
        return Loaded({"items": items, "next_cursor": encode_int(nxt)},
                      frozenset({read_model.DIRECTORY_TAG}))

    key = ("streamers", page.limit, after, query)
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
        raise InvalidInput.all([FieldError(k, "required", "may not be set to null")
                                for k, v in changes.items() if v is None])
    async with c.core_db.begin() as conn:
        updated = await channels.update_settings(
            conn, streamer_id=user.user_id, changes=changes, now=c.clock.now(),
            min_pledge=c.settings.min_pledge, max_pledge=c.settings.max_pledge,
            max_mission_seconds=c.settings.max_mission_seconds,
        )
    await c.read_cache.announce(c.broker, {read_model.DIRECTORY_TAG,
                                           read_model.channel_tag(user.user_id)})
    return updated


@router.get("/me/profile", response_model=ProfileOut)
async def my_profile(user: CurrentStreamer, c: Deps) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        return await channels.get_profile(conn, user.user_id)


@router.patch("/me/profile", response_model=ProfileOut)
async def update_profile(body: ProfileIn, user: CurrentStreamer, c: Deps) -> dict[str, Any]:
    """Change the intro and/or the channel link shown on the channel page."""
    changes = body.model_dump(exclude_unset=True)
    if any(v is None for v in changes.values()):
        raise InvalidInput('profile fields may not be null ("" removes the intro or link)')
    async with c.core_db.begin() as conn:
        updated = await channels.update_profile(
            conn, streamer_id=user.user_id, intro=changes.get("intro"),
            link=changes.get("link"), now=c.clock.now())
    await c.read_cache.announce(c.broker, {read_model.DIRECTORY_TAG,
                                           read_model.channel_tag(user.user_id)})
    return updated


@router.get("/{streamer_id}/top-backers", response_model=TopBackersOut)
async def channel_top_backers(streamer_id: PathId, c: Deps) -> dict[str, Any]:
    """The channel's ten biggest backers by display name. Counted: pledges on missions
    that succeeded and on open missions not yet expired; refunded and anonymous pledges
    never count."""
    now = c.clock.now()
    async with c.core_db.read() as conn:
        await channels.get_streamer(conn, streamer_id, now)  # 404 for no such channel
        items = await top_backers.top_backers(conn, streamer_id=streamer_id, now=now)
    return {"items": items}


@router.get("/{streamer_id}", response_model=dict[str, Any], responses=NOT_MODIFIED)
async def show(streamer_id: PathId, request: Request, c: Deps) -> Response:
    async def load() -> Loaded:
        async with c.core_db.read() as conn:
            channel = await channels.get_streamer(conn, streamer_id, c.clock.now())
        return Loaded(channel, frozenset({read_model.channel_tag(streamer_id)}))

    return await read_cache.cached(request, c, ("streamer", streamer_id), load)
