"""Public live streams of missions and channels, fanned out from one subscription per topic.

A hyped mission draws thousands of viewers to each API process, all watching the same
channel topic. The :class:`LiveHub` subscribes to the broker once per topic and process
(the first viewer opens the subscription, the last one closes it) and encodes each event
once into a :class:`Frame` kept in the topic's short ring. A viewer's stream holds only a
cursor into that ring and, while it waits, one future that the topic resolves at the next
frame, so a new pledge costs one JSON encoding per process and one write per viewer, with
no queue per viewer.

Because the frame bytes are shared, so is their ``id``: a pledge's frame is ``p<pledge id>``
and every other event carries no id, so a client's ``Last-Event-ID`` stays the newest pledge
it was told about. A viewer that falls a whole ring behind (it stopped reading) is ended;
it resumes with ``Last-Event-ID`` and gets the pledges it missed. When the server starts
to shut down, the hub closes every topic, so all its streams end then and resume elsewhere.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import State

from missionlink.adapters.broker.inprocess import Broker
from missionlink.api import overlay_stream, stream_gate
from missionlink.api.context import AppContext
from missionlink.api.overlay_stream import channel_topic, frame, resume_point
from missionlink.domain import events
from missionlink.domain.timestamps import iso
from missionlink.observability.metrics import SSE_EVENTS
from missionlink.services import overlay as overlay_service
from missionlink.services.mission_views import get_mission

log = logging.getLogger(__name__)

#: Frames a topic keeps; a viewer further behind than this is ended and resumes.
RING = 256
HEARTBEAT = b": heartbeat\n\n"
#: Broker messages that are not public events (the overlay's own signals).
_PRIVATE_TYPES = frozenset({overlay_stream.ROTATED})
_SENT_MISSION = SSE_EVENTS.labels("mission")
_SENT_CHANNEL = SSE_EVENTS.labels("channel")
_NONE_REPLAYED: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Frame:
    """One event as every stream writes it, with what a stream needs to filter it."""

    data: bytes
    mission_id: int | None
    pledge_id: int | None


def encode(event: dict[str, Any]) -> Frame | None:
    """The shared frame of a channel event; None for what public streams never show."""
    kind = event.get("type")
    if not isinstance(kind, str) or kind in _PRIVATE_TYPES:
        return None
    mission_id = event.get("mission_id")
    pledge_id = event.get("pledge_id") if kind == events.PLEDGE_CREATED else None
    event_id = f"p{int(pledge_id)}" if pledge_id is not None else None
    return Frame(frame(event, event_id).encode(),
                 int(mission_id) if mission_id is not None else None,
                 int(pledge_id) if pledge_id is not None else None)


class Topic:
    """One channel topic in this process: its recent frames and the streams that read them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames: deque[Frame] = deque(maxlen=RING)
        #: Sequence number just after the newest frame; a stream's cursor counts the same way.
        self.end = 0
        self.beats = 0
        self.streams = 0
        self.closed = False
        self.ready = asyncio.Event()
        #: One future per waiting stream, all resolved at the next frame, heartbeat or close.
        self._waiting: list[asyncio.Future[None]] = []
        self.task: asyncio.Task[None] | None = None

    def since(self, cursor: int) -> list[Frame] | None:
        """Frames from ``cursor`` on; None when the oldest of them has left the ring."""
        start = self.end - len(self.frames)
        if cursor < start:
            return None
        if cursor == self.end:
            return []
        return list(itertools.islice(self.frames, cursor - start, None))

    def publish(self, frames: list[Frame]) -> None:
        self.frames.extend(frames)
        self.end += len(frames)
        self._wake_all()

    def beat(self) -> None:
        self.beats += 1
        self._wake_all()

    def close(self) -> None:
        self.closed = True
        self.ready.set()
        self._wake_all()

    def _wake_all(self) -> None:
        waiting, self._waiting = self._waiting, []
        for woken in waiting:
            if not woken.done():  # its stream may have been woken by its client leaving
                woken.set_result(None)

    def next_round(self) -> asyncio.Future[None]:
        """A future of the caller's own, resolved at the next frame, heartbeat or close.

        Each stream awaits its own: cancelling one stream leaves the others waiting, and
        a stream's client leaving resolves it early (:meth:`LiveStream.leave`).
        """
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(woken)
        return woken


class LiveHub:
    """Per process: one broker subscription per topic that any public stream watches."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self.topics: dict[str, Topic] = {}
        #: The server is shutting down: streams end, new ones end after their snapshot.
        self.draining = False

    def drain(self) -> None:
        """End every stream now (the server is shutting down); they resume elsewhere."""
        self.draining = True
        for topic in list(self.topics.values()):
            topic.close()

    async def join(self, name: str) -> Topic:
        """The topic, subscribed; every join is paired with one :meth:`leave`."""
        stream_gate.draining().watch(self)
        topic = self.topics.get(name)
        if topic is None or topic.closed:
            topic = self.topics[name] = Topic(name)
            topic.task = asyncio.create_task(self._relay(topic), name=f"live:{name}")
        topic.streams += 1
        try:
            # Subscribed before the caller reads its snapshot, so nothing falls in between.
            await topic.ready.wait()
        except BaseException:
            self.leave(topic)
            raise
        return topic

    def leave(self, topic: Topic) -> None:
        """One stream fewer; the last one ends the topic's subscription."""
        topic.streams -= 1
        if topic.streams == 0:
            if self.topics.get(topic.name) is topic:
                del self.topics[topic.name]
            topic.close()
            if topic.task is not None:
                topic.task.cancel()

    async def _relay(self, topic: Topic) -> None:
        """Encode each broker message of the topic once; beat every ``HEARTBEAT_SECONDS``."""
        try:
            async with self._broker.subscribe(topic.name) as queue:
                topic.ready.set()
                next_beat = time.monotonic() + overlay_stream.HEARTBEAT_SECONDS
                while True:
                    delay = next_beat - time.monotonic()
                    if delay <= 0:
                        topic.beat()
                        next_beat = time.monotonic() + overlay_stream.HEARTBEAT_SECONDS
                        continue
                    try:
                        async with asyncio.timeout(delay):
                            message = await queue.get()
                    except TimeoutError:
                        continue
                    # A burst that arrived together wakes the streams once.
                    batch = [message]
                    while not queue.empty():
                        batch.append(queue.get_nowait())
                    frames = [f for f in map(encode, batch) if f is not None]
                    if frames:
                        topic.publish(frames)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live: the relay of %s failed; its streams end and resume", topic.name)
        finally:
            topic.close()


def hub_of(request: Request, c: AppContext) -> LiveHub:
    """The process's hub (one per application, created on first use)."""
    return hub_in(request.app.state, c)


def hub_in(state: State, c: AppContext) -> LiveHub:
    """The hub kept in an application's ``state``, for callers outside its routes."""
    hub: LiveHub | None = getattr(state, "live_hub", None)
    if hub is None:
        hub = state.live_hub = LiveHub(c.broker)
    return hub


class LiveStream:
    """A public stream of a channel, or of one mission of it (``mission_id``).

    A plain object that whoever serves it drives: :meth:`open`, then :meth:`next` until it
    returns None, then :meth:`close`. An open stream holds its cursor into the topic and,
    while it waits, one future; nothing else of its own.
    """

    __slots__ = ("_beats", "_cursor", "_ends", "_left", "_replayed", "_topic", "_woken", "c",
                 "hub", "mission_id", "resume_after", "streamer_id")

    def __init__(self, c: AppContext, hub: LiveHub, *, streamer_id: int,
                 mission_id: int | None, last_event_id: str | None) -> None:
        self.c = c
        self.hub = hub
        self.streamer_id = streamer_id
        self.mission_id = mission_id
        self.resume_after = resume_point(last_event_id)
        self._replayed: frozenset[int] = _NONE_REPLAYED
        self._topic: Topic | None = None
        self._cursor = self._beats = 0
        self._ends = 0.0
        self._woken: asyncio.Future[None] | None = None
        self._left = False

    async def open(self) -> bytes:
        """Join the channel's topic and read the snapshot: the stream's first bytes."""
        topic = self._topic = await self.hub.join(channel_topic(self.streamer_id))
        self._cursor, self._beats = topic.end, topic.beats
        lifetime = overlay_stream.MAX_STREAM_SECONDS * (0.9 + secrets.randbelow(200) / 1000)
        self._ends = time.monotonic() + lifetime
        return await self._snapshot()

    async def next(self) -> bytes | None:
        """The bytes due next, waiting for them; None once the stream is over.

        Over means: its lifetime passed, its topic closed, it fell a whole ring behind, its
        client left (:meth:`leave`) or the server is shutting down.
        """
        topic = self._topic
        while topic is not None and not topic.closed and not self._left:
            if self.hub.draining:
                return None
            if time.monotonic() >= self._ends:
                return None
            frames = topic.since(self._cursor)
            if frames is None:
                return None
            self._cursor = topic.end
            due = [f.data for f in frames if self._shown(f)]
            if due:
                (_SENT_CHANNEL if self.mission_id is None else _SENT_MISSION).inc(len(due))
            if self._beats != topic.beats:
                self._beats = topic.beats
                due.append(HEARTBEAT)
            if due:
                # One frame is written as the shared bytes themselves, not a copy.
                return b"".join(due)
            self._woken = topic.next_round()
            try:
                await self._woken
            finally:
                self._woken = None
        return None

    def leave(self) -> None:
        """The client went away: the stream ends now, even while it waits."""
        self._left = True
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    def close(self) -> None:
        """Leave the topic (once; later calls do nothing)."""
        topic, self._topic = self._topic, None
        if topic is not None:
            self.hub.leave(topic)

    async def events(self) -> AsyncGenerator[bytes, None]:
        """The stream's bytes as an async iterator, for a streaming response."""
        try:
            chunk: bytes | None = await self.open()
            while chunk is not None:
                yield chunk
                chunk = await self.next()
        finally:
            self.close()

    async def _snapshot(self) -> bytes:
        now = self.c.clock.now()
        async with self.c.core_db.read() as conn:
            if self.mission_id is None:
                snap = await overlay_service.snapshot(conn, self.streamer_id, now)
            else:
                snap = {"type": "snapshot", "mission_id": self.mission_id,
                        "streamer_id": self.streamer_id, "server_time": iso(now),
                        "mission": await get_mission(conn, self.mission_id, now)}
            cursor = await overlay_service.last_pledge_id(conn, self.streamer_id)
            missed = []
            if self.resume_after is not None:
                missed = await overlay_service.missed_pledges(
                    conn, self.streamer_id, self.resume_after, now, mission_id=self.mission_id
                )
        if missed:  # most streams replay nothing and share the empty set
            self._replayed = frozenset(int(p["pledge_id"]) for p in missed)
        opening = [f"retry: {overlay_stream.RETRY_MILLISECONDS}\n\n", frame(snap, f"p{cursor}")]
        opening += [frame(p, f"p{p['pledge_id']}") for p in missed]
        return "".join(opening).encode()

    def _shown(self, f: Frame) -> bool:
        if self.mission_id is not None and f.mission_id != self.mission_id:
            return False
        return f.pledge_id is None or f.pledge_id not in self._replayed
