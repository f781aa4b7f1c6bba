"""Public live streams: a mission's and a channel's events as server-sent events, no login."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable
from typing import Annotated, Any, cast

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from missionlink.api.deps import ClientAddress, Deps
from missionlink.api.live_hub import LiveStream, hub_of
from missionlink.api.params import PathId
from missionlink.api.problems import MEDIA_TYPE, Problem
from missionlink.api.stream_gate import GatedStream, Slot, StreamGate, gate_of
from missionlink.services import channels
from missionlink.services.mission_views import get_mission

router = APIRouter(tags=["live"])

#: Nobody should cache or buffer a live stream (a CDN would hold every viewer's events).
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
#: The gate counts streams per key too; a public stream has no credential, so each stream is
#: its own key and only the per-address and per-process caps apply.
_STREAM_KEYS = itertools.count()


def _responses(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {"text/event-stream": {}},
              "description": f"a snapshot of the {what}, then its live events "
                             "(see docs/live.md)"},
        404: {"model": Problem, "content": {MEDIA_TYPE: {}},
              "description": f"no such {what} (code `not-found`)"},
        429: {"model": Problem, "content": {MEDIA_TYPE: {}},
              "description": "this client address holds as many live streams as it may "
                             "(code `rate-limited`; see `Retry-After`)",
              "headers": {"Retry-After": {"description": "seconds to wait",
                                          "schema": {"type": "integer", "minimum": 0}}}},
        503: {"model": Problem, "content": {MEDIA_TYPE: {}},
              "description": "this server holds as many live streams as it can "
                             "(code `streams-full`; see `Retry-After`)"},
    }


def admit(gate: StreamGate, address: str) -> Slot:
    """A slot for one public stream from ``address`` (TooManyStreams, StreamsFull)."""
    return gate.acquire(f"live:{next(_STREAM_KEYS)}", address)


def _open(request: Request, c: Deps, address: ClientAddress, *, streamer_id: int,
          mission_id: int | None, last_event_id: str | None) -> GatedStream:
    # Taken last: from here the response owns the slot and gives it back however it ends.
    slot = admit(gate_of(request, c.settings), address)
    stream = LiveStream(c, hub_of(request, c), streamer_id=streamer_id,
                        mission_id=mission_id, last_event_id=last_event_id)
    # Bytes, not text: a frame is encoded once per process and written as is to every stream.
    content = cast(AsyncIterable[str], stream.events())
    return GatedStream(content, slot, headers=STREAM_HEADERS)


@router.get("/api/v1/missions/{mission_id}/events", tags=["missions"],
            response_class=StreamingResponse, responses=_responses("mission"))
async def mission_events(
    mission_id: PathId, request: Request, c: Deps, address: ClientAddress,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    async with c.core_db.read() as conn:
        mission = await get_mission(conn, mission_id, c.clock.now())
    return _open(request, c, address, streamer_id=int(mission["streamer_id"]),
                 mission_id=mission_id, last_event_id=last_event_id)


@router.get("/api/v1/channels/{streamer_id}/events", tags=["streamers"],
            response_class=StreamingResponse, responses=_responses("channel"))
async def channel_events(
    streamer_id: PathId, request: Request, c: Deps, address: ClientAddress,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    async with c.core_db.read() as conn:
        await channels.get_streamer(conn, streamer_id, c.clock.now())
    return _open(request, c, address, streamer_id=streamer_id, mission_id=None,
                 last_event_id=last_event_id)
