"""Caps on live (server-sent-events) streams: per credential, per client address, per process.

A stream holds a socket, a broker subscription and a task for minutes, so one client
opening thousands of them would starve everyone else. Every live stream goes through
:class:`StreamGate`: it takes a slot before the response starts and gives it back when the
response ends, however it ends (normal end, client gone, send timeout, error). Counts are
per process in memory; each API process enforces its own share of ``SSE_MAX_PER_PROCESS``.

:func:`draining` is how streams learn that the server is shutting down: the HTTP protocol
(:mod:`missionlink.api.server`) starts it when uvicorn asks its connections to shut down,
and every stream then ends at once, cleanly, so its client reconnects with
``Last-Event-ID`` to another replica instead of holding the shutdown until uvicorn's
graceful timeout cuts it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from collections.abc import AsyncIterable, Mapping
from typing import Protocol

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from missionlink.config import Settings
from missionlink.domain.errors import DomainError, RateLimited
from missionlink.observability import metrics

log = logging.getLogger(__name__)

#: Streams are long-lived, so a refused client should not come straight back.
RETRY_AFTER_SECONDS = 10


class Drainable(Protocol):
    def drain(self) -> None:
        """End every stream this object serves, now (it must not block)."""


class Draining:
    """The shutdown of the server running on one event loop, as streams see it.

    Whoever serves live streams :meth:`watch` es it; :meth:`begin` drains them all (and any
    watcher that comes later at once). Watchers are held weakly.
    """

    def __init__(self) -> None:
        self.started = False
        self._watchers: weakref.WeakSet[Drainable] = weakref.WeakSet()

    def watch(self, watcher: Drainable) -> None:
        if self.started:
            watcher.drain()
        else:
            self._watchers.add(watcher)

    def unwatch(self, watcher: Drainable) -> None:
        self._watchers.discard(watcher)

    def begin(self) -> None:
        if self.started:
            return
        self.started = True
        watchers = list(self._watchers)
        self._watchers.clear()
        log.info("shutdown: ending the live streams of %d sources", len(watchers))
        for watcher in watchers:
            watcher.drain()


_DRAINING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Draining] = (
    weakref.WeakKeyDictionary())


def draining(loop: asyncio.AbstractEventLoop | None = None) -> Draining:
    """The shutdown of the server on ``loop`` (by default the running one).

    One per event loop, not per process: ``serve`` runs one loop, and a test that starts
    and stops servers in loops of its own keeps each shutdown to its own loop.
    """
    loop = loop or asyncio.get_running_loop()
    found = _DRAINING.get(loop)
    if found is None:
        found = _DRAINING[loop] = Draining()
    return found


class TooManyStreams(RateLimited):
    """This credential or address already holds its share of live streams."""

    limit = "stream"


class StreamsFull(DomainError):
    code = "streams-full"
    title = "Too many live streams on this server"


class Slot:
    """One admitted stream; :meth:`release` is idempotent."""

    def __init__(self, gate: StreamGate, key: str, address: str) -> None:
        self._gate = gate
        self._key = key
        self._address = address
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate._release(self._key, self._address)


class StreamGate:
    """Admission for live streams; 0 turns a cap off."""

    def __init__(self, *, per_key: int, per_address: int, per_process: int) -> None:
        self.per_key = per_key
        self.per_address = per_address
        self.per_process = per_process
        self._keys: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()
        self.open = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamGate:
        return cls(per_key=settings.sse_max_per_token, per_address=settings.sse_max_per_address,
                   per_process=settings.sse_max_per_process)

    def acquire(self, key: str, address: str) -> Slot:
        """A slot for a stream opened with ``key`` (a token, a channel) from ``address``."""
        if self.per_process and self.open >= self.per_process:
            metrics.SSE_REFUSED.labels("process").inc()
            raise StreamsFull("this server holds as many live streams as it can; retry later",
                              retry_after=RETRY_AFTER_SECONDS)
        if self.per_key and self._keys[key] >= self.per_key:
            metrics.SSE_REFUSED.labels("token").inc()
            raise TooManyStreams(f"at most {self.per_key} live streams per overlay URL",
                                 retry_after=RETRY_AFTER_SECONDS)
        if self.per_address and self._addresses[address] >= self.per_address:
            metrics.SSE_REFUSED.labels("address").inc()
            raise TooManyStreams(f"at most {self.per_address} live streams per client address",
                                 retry_after=RETRY_AFTER_SECONDS)
        self._keys[key] += 1
        self._addresses[address] += 1
        self.open += 1
        metrics.SSE_OPEN.inc()
        return Slot(self, key, address)

    def held_by(self, key: str) -> int:
        return self._keys[key]

    def _release(self, key: str, address: str) -> None:
        # Counter keeps zero entries; drop them so the maps only hold live streams.
        for counts, name in ((self._keys, key), (self._addresses, address)):
            counts[name] -= 1
            if counts[name] <= 0:
                del counts[name]
        self.open -= 1
        metrics.SSE_OPEN.dec()


def gate_of(request: Request, settings: Settings) -> StreamGate:
    """The process's gate (one per application, created on first use)."""
    return gate_in(request.app.state, settings)


def gate_in(state: State, settings: Settings) -> StreamGate:
    """The gate kept in an application's ``state``, for callers outside its routes."""
    gate: StreamGate | None = getattr(state, "stream_gate", None)
    if gate is None:
        gate = state.stream_gate = StreamGate.from_settings(settings)
    return gate


class GatedStream(StreamingResponse):
    """A server-sent-events response that holds ``slot`` for exactly as long as it runs.

    The slot is given back when the ASGI call returns or raises (a client that went away
    cancels it), and the event generator is closed then too, so its subscription ends now
    rather than whenever the garbage collector finalizes it.
    """

    def __init__(self, content: AsyncIterable[str], slot: Slot,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self._content = content
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()
            aclose = getattr(self._content, "aclose", None)
            if aclose is not None:
                await aclose()
