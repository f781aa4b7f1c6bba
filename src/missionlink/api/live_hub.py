"""Public live streams of missions and channels, fanned out from one subscription per topic.

A hyped mission draws thousands of viewers to each API process, all watching the same
channel topic. The :class:`LiveHub` subscribes to the broker once per topic and process
(the first viewer opens the subscription, the last one closes it) and encodes each event
once into a :class:`Frame` kept in the topic's short ring. A viewer's stream holds only a
cursor into that ring and waits on the topic's shared wake-up, so a new pledge costs one
JSON encoding per process and one write per viewer, with no queue per viewer.

Because the frame bytes are shared, so is their ``id``: a pledge's frame is ``p<pledge id>``
and every other event carries no id, so a client's ``Last-Event-ID`` stays the newest pledge
it was told about. A viewer that falls a whole ring behind (it stopped reading) is ended;
it resumes with ``Last-Event-ID`` and gets the pledges it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import State

from missionlink.adapters.broker.inprocess import Broker
from missionlink.api import overlay_stream
from missionlink.api.overlay_stream import channel_topic, frame, resume_point
from missionlink.bootstrap import Container
from missionlink.services import outbox
from missionlink.services import overlay as overlay_service
from missionlink.services.mission_queries import get_mission, iso

log = logging.getLogger(__name__)

#: Frames a topic keeps; a viewer further behind than this is ended and resumes.
RING = 256
HEARTBEAT = b": heartbeat\n\n"
#: Broker messages that are not public events (the overlay's own signals).
_PRIVATE_TYPES = frozenset({overlay_stream.ROTATED})


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
    pledge_id = event.get("pledge_id") if kind == outbox.PLEDGE_CREATED else None
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
        #: Resolved at the next frame, heartbeat or close; created when a stream first waits.
        self._wake: asyncio.Future[None] | None = None
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
        # One future per round: streams that were waiting wake once, later ones wait anew.
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def wait(self, gone: asyncio.Future[None] | None = None) -> None:
        """Until the next frame, heartbeat or close, or until ``gone`` (the client left).

        Waits on futures only: a stream that is cancelled leaves the shared one intact.
        """
        if self._wake is None:
            self._wake = asyncio.get_running_loop().create_future()
        waiting = {self._wake} if gone is None else {self._wake, gone}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)


class LiveHub:
    """Per process: one broker subscription per topic that any public stream watches."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self.topics: dict[str, Topic] = {}

    @contextlib.asynccontextmanager
    async def join(self, name: str) -> AsyncIterator[Topic]:
        topic = self.topics.get(name)
        if topic is None or topic.closed:
            topic = self.topics[name] = Topic(name)
            topic.task = asyncio.create_task(self._relay(topic), name=f"live:{name}")
        topic.streams += 1
        try:
            # Subscribed before the caller reads its snapshot, so nothing falls in between.
            await topic.ready.wait()
            yield topic
        finally:
            topic.streams -= 1
            if topic.streams == 0:
                if self.topics.get(name) is topic:
                    del self.topics[name]
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


def hub_of(request: Request, c: Container) -> LiveHub:
    """The process's hub (one per application, created on first use)."""
    return hub_in(request.app.state, c)


def hub_in(state: State, c: Container) -> LiveHub:
    """The hub kept in an application's ``state``, for callers outside its routes."""
    hub: LiveHub | None = getattr(state, "live_hub", None)
    if hub is None:
        hub = state.live_hub = LiveHub(c.broker)
    return hub


class LiveStream:
    """A public stream of a channel, or of one mission of it (``mission_id``)."""

    def __init__(self, c: Container, hub: LiveHub, *, streamer_id: int,
                 mission_id: int | None, last_event_id: str | None) -> None:
        self.c = c
        self.hub = hub
        self.streamer_id = streamer_id
        self.mission_id = mission_id
        self.resume_after = resume_point(last_event_id)
        self._replayed: frozenset[int] = frozenset()

    async def _snapshot(self) -> list[bytes]:
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
        self._replayed = frozenset(int(p["pledge_id"]) for p in missed)
        opening = [f"retry: {overlay_stream.RETRY_MILLISECONDS}\n\n", frame(snap, f"p{cursor}")]
        opening += [frame(p, f"p{p['pledge_id']}") for p in missed]
        return [text.encode() for text in opening]

    def _shown(self, f: Frame) -> bool:
        if self.mission_id is not None and f.mission_id != self.mission_id:
            return False
        return f.pledge_id is None or f.pledge_id not in self._replayed

    async def events(self, gone: asyncio.Future[None] | None = None
                     ) -> AsyncGenerator[bytes, None]:
        """The stream's bytes; it ends early once ``gone`` (the client went away) is done."""
        async with self.hub.join(channel_topic(self.streamer_id)) as topic:
            cursor, beats = topic.end, topic.beats
            for opening in await self._snapshot():
                yield opening
            lifetime = overlay_stream.MAX_STREAM_SECONDS * (0.9 + secrets.randbelow(200) / 1000)
            ends = time.monotonic() + lifetime
            while not topic.closed:
                frames = topic.since(cursor)
                if frames is None:
                    return
                cursor = topic.end
                for f in frames:
                    if self._shown(f):
                        yield f.data
                if beats != topic.beats:
                    beats = topic.beats
                    yield HEARTBEAT
                if time.monotonic() >= ends:
                    return
                if cursor == topic.end and beats == topic.beats and not topic.closed:
                    await topic.wait(gone)
                if gone is not None and gone.done():
                    return
