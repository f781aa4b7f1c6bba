"""The overlay's server-sent-events stream.

Subscribes to the channel's broker topic before reading the snapshot, so nothing published
in between is lost; every frame's ``id`` is ``p<N>``, N being the newest pledge the client
has been told about, so a reconnect with ``Last-Event-ID`` gets a fresh snapshot and the
pledges it missed. Heartbeat comments go out every ``HEARTBEAT_SECONDS`` and also refresh
``channels.live_at`` (at most once per ``LIVE_REFRESH_SECONDS`` per channel and process, so
thousands of viewers of one overlay do not all write the same row). When the server starts
to shut down the stream ends at once, and the overlay resumes on another replica.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from missionlink.api import stream_gate
from missionlink.api.context import AppContext
from missionlink.domain import events
from missionlink.observability.metrics import SSE_EVENTS
from missionlink.services import overlay as overlay_service
from missionlink.services import read_model

HEARTBEAT_SECONDS = 15.0
LIVE_REFRESH_SECONDS = 10.0
RETRY_MILLISECONDS = 2000
#: Streams end after about this long (jittered) and the client resumes at once: viewers
#: spread over new replicas after a scale-out, and a draining replica empties in time.
MAX_STREAM_SECONDS = 900.0
ROTATED = "overlay.rotated"
_SENT = SSE_EVENTS.labels("overlay")
#: ``[0-9]``, not ``\d``: int() would also read Arabic-Indic or full-width digits.
_LAST_EVENT_ID = re.compile(r"p([0-9]{1,18})")
#: Put in a stream's own queue when the server shuts down (compared by identity).
_DRAIN: dict[str, Any] = {"type": "server.draining"}


def channel_topic(streamer_id: int) -> str:
    return f"channel:{streamer_id}"


def frame(data: dict[str, Any], event_id: str | None) -> str:
    """One event; without ``event_id`` the client keeps the last id it was given."""
    # json.dumps escapes CR and LF inside strings, so one data line is always enough.
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if event_id is None:
        return f"data: {body}\n\n"
    return f"id: {event_id}\ndata: {body}\n\n"


def resume_point(last_event_id: str | None) -> int | None:
    match = _LAST_EVENT_ID.fullmatch(last_event_id or "")
    return int(match.group(1)) if match else None


class Presence:
    """Per process: when each channel was last marked live, and under which token."""

    def __init__(self) -> None:
        self._checked: dict[int, tuple[float, str, bool]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def forget(self, streamer_id: int) -> None:
        self._checked.pop(streamer_id, None)

    async def still_valid(self, c: AppContext, streamer_id: int, token: str) -> bool:
        """Refresh ``live_at`` if due; False once ``token`` no longer opens the channel."""
        lock = self._locks.setdefault(streamer_id, asyncio.Lock())
        async with lock:
            seen = self._checked.get(streamer_id)
            fresh = seen and time.monotonic() - seen[0] < LIVE_REFRESH_SECONDS
            if seen and fresh and seen[1] == token:
                return seen[2]
            async with c.core_db.begin() as conn:
                ok = await overlay_service.touch_live(conn, streamer_id, token, c.clock.now())
            self._checked[streamer_id] = (time.monotonic(), token, ok)
            if ok and not (seen and seen[2]):
                # The channel may just have gone live: cached channel reads show it now.
                await c.read_cache.announce(
                    c.broker, {read_model.DIRECTORY_TAG, read_model.channel_tag(streamer_id)})
            return ok


class OverlayStream:
    def __init__(
        self, c: AppContext, presence: Presence, *, streamer_id: int, token: str,
        last_event_id: str | None,
    ) -> None:
        self.c = c
        self.presence = presence
        self.streamer_id = streamer_id
        self.token = token
        self.resume_after = resume_point(last_event_id)
        self.cursor = 0
        self._replayed: set[int] = set()
        self._queue: asyncio.Queue[dict[str, Any]] | None = None

    def _id(self) -> str:
        return f"p{self.cursor}"

    async def _opening(self) -> list[str]:
        now = self.c.clock.now()
        async with self.c.core_db.read() as conn:
            snap = await overlay_service.snapshot(conn, self.streamer_id, now)
            self.cursor = await overlay_service.last_pledge_id(conn, self.streamer_id)
            missed = []
            if self.resume_after is not None:
                missed = await overlay_service.missed_pledges(
                    conn, self.streamer_id, self.resume_after, now
                )
        self._replayed = {int(p["pledge_id"]) for p in missed}
        frames = [f"retry: {RETRY_MILLISECONDS}\n\n", frame(snap, self._id())]
        frames += [frame(p, f"p{p['pledge_id']}") for p in missed]
        return frames

    def _render(self, event: dict[str, Any]) -> str | None:
        if event.get("type") == events.PLEDGE_CREATED:
            pledge_id = int(event.get("pledge_id") or 0)
            if pledge_id in self._replayed:
                return None
            self.cursor = max(self.cursor, pledge_id)
        return frame(event, self._id())

    async def _still_valid(self) -> bool:
        return await self.presence.still_valid(self.c, self.streamer_id, self.token)

    def drain(self) -> None:
        """The server is shutting down: the stream ends at its next wait."""
        queue = self._queue
        if queue is None:
            return
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(_DRAIN)

    async def events(self) -> AsyncIterator[str]:
        async with self.c.broker.subscribe(channel_topic(self.streamer_id)) as queue:
            self._queue = queue
            shutdown = stream_gate.draining()
            shutdown.watch(self)
            try:
                for opening in await self._opening():
                    yield opening
                if not await self._still_valid():
                    return
                next_beat = time.monotonic() + HEARTBEAT_SECONDS
                lifetime = MAX_STREAM_SECONDS * (0.9 + secrets.randbelow(200) / 1000)
                ends = time.monotonic() + lifetime
                while time.monotonic() < ends:
                    try:
                        async with asyncio.timeout(max(0.0, next_beat - time.monotonic())):
                            event = await queue.get()
                    except TimeoutError:
                        if not await self._still_valid():
                            return
                        yield ": heartbeat\n\n"
                        next_beat = time.monotonic() + HEARTBEAT_SECONDS
                        continue
                    if event is _DRAIN:
                        return
                    if event.get("type") == ROTATED:
                        self.presence.forget(self.streamer_id)
                        if not await self._still_valid():
                            return
                        continue
                    rendered = self._render(event)
                    if rendered is not None:
                        _SENT.inc()
                        yield rendered
            finally:
                shutdown.unwatch(self)
                self._queue = None
