"""The front layer: the two hottest public paths answered before the FastAPI app.

A spike is anonymous viewers re-reading a mission and holding its live stream open. Both
are answered here, in front of the middleware stack, routing and dependency solving:

- a **cached public read** (mission, channel, prediction pools) that is in this replica's
  read model is written straight from the entry, with the ``ETag``/``304`` logic of
  :mod:`missionlink.api.read_cache`;
- a **public live stream** writes the hub's shared frames straight to ``send`` and notices
  the client leaving in the stream's own task (:class:`ClientGone`), so an open stream
  costs its socket, its cursor and one coroutine, not a request of the whole stack.

Everything else goes to the app unchanged, and so does anything unusual: a credential (an
``Authorization`` header or an auth cookie), an ``Origin`` (CORS answers those), a body, an
id outside the id policy, a read model miss, an unknown mission or channel, a refused
stream. The app then answers as it always does (loads and stores the read, 404, 422, 429).
What is answered here carries exactly the headers the middlewares would add and is
counted under the same route template.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Hashable
from typing import Any

from starlette.datastructures import State
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from missionlink.api import read_cache
from missionlink.api.context import AppContext
from missionlink.api.deps import client_address
from missionlink.api.live_hub import LiveStream, hub_in
from missionlink.api.middleware import (
    SecurityHeadersMiddleware,
    carries_credentials,
    public_security_headers,
    vary_on_origin,
)
from missionlink.api.params import parse_id
from missionlink.api.problems import UNAVAILABLE, internal_error
from missionlink.api.routers.live import STREAM_HEADERS, admit
from missionlink.api.stream_gate import Slot, gate_in
from missionlink.domain.errors import DomainError
from missionlink.observability.http import (
    RequestIdMiddleware,
    SampledRequestLog,
    record_request,
    report_unhandled,
    request_id_of,
)
from missionlink.services import channels
from missionlink.services.mission_views import get_mission
from missionlink.services.read_model import Entry

#: Refusals and outages before a stream's first byte: the app answers them as it always does.
_FALL_THROUGH: tuple[type[Exception], ...] = (DomainError, *UNAVAILABLE)
MISSIONS = "/api/v1/missions/"
STREAMERS = "/api/v1/streamers/"
CHANNELS = "/api/v1/channels/"
EVENTS = "/events"
#: A request carrying any of these goes to the app: CORS answers an ``Origin``, and the
#: body limit answers a body.
_NOT_HERE = frozenset({b"origin", b"content-length", b"transfer-encoding"})
_JSON = (b"content-type", b"application/json")
#: ETags whose encoded response headers are kept (about 1 KiB each).
_READ_HEADS_KEPT = 1024
_STREAM_START = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                 for k, v in STREAM_HEADERS.items()]
_STREAM_START.append((b"content-type", b"text/event-stream; charset=utf-8"))


class ClientGone:
    """Calls ``on_gone`` when the client goes away, without a task of its own.

    The server's ``receive()`` is stepped along from the futures it waits on, which is
    all a task would do for it, so a stream waits for its next frame and for the
    disconnect in one task (Starlette's streaming response starts a second one per
    stream to listen).
    """

    __slots__ = ("_loop", "_on_gone", "_receive", "_step_of", "left")

    def __init__(self, receive: Receive, on_gone: Callable[[], None]) -> None:
        self._receive = receive
        self._on_gone = on_gone
        self._loop = asyncio.get_running_loop()
        self.left = False
        self._step_of: Generator[Any, None, Message] | None = None
        self._next()

    def _next(self) -> None:
        self._step_of = self._receive().__await__()
        self._step()

    def _step(self, _: object = None) -> None:
        while (step_of := self._step_of) is not None:
            try:
                waiting_on = step_of.send(None)
            except StopIteration as done:
                if done.value.get("type") == "http.disconnect":
                    self._gone()
                    return
                self._step_of = self._receive().__await__()  # a request body chunk
                continue
            except BaseException:  # the server's receive failed: nobody is listening
                self._gone()
                return
            if waiting_on is None:  # a bare yield, as in ``asyncio.sleep(0)``
                self._loop.call_soon(self._step)
            elif getattr(waiting_on, "_asyncio_future_blocking", False):
                waiting_on._asyncio_future_blocking = False
                waiting_on.add_done_callback(self._step)
            else:
                self.close()
                self._gone()
            return

    def _gone(self) -> None:
        self._step_of = None
        if not self.left:
            self.left = True
            self._on_gone()

    def close(self) -> None:
        """Stop listening (the response is over)."""
        step_of, self._step_of = self._step_of, None
        if step_of is not None:
            step_of.close()


class FastPath:
    """Pure ASGI, in front of the whole middleware stack of the application that
    :func:`missionlink.api.app.create_app` builds, sharing its ``state`` (read model, live
    hub, stream gate)."""

    def __init__(self, app: ASGIApp, *, state: State, container: AppContext, hsts: bool,
                 cors: bool, auth_cookies: tuple[str, ...]) -> None:
        self.app = app
        self.state = state
        self.container = container
        self.hsts = hsts
        self.cors = cors
        self.auth_cookies = frozenset(auth_cookies)
        self._security = public_security_headers(hsts=hsts)
        #: A cached read's response headers but its request id, encoded once per ETag.
        self._read_heads: dict[str, tuple[list[tuple[bytes, bytes]], ...]] = {}
        self._read_log = SampledRequestLog(container.settings.log_cached_reads_every)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and await self._serve(
            scope, receive, send
        ):
            return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer here and return True, or return False having sent and read nothing."""
        path: str = scope["path"]
        if path.startswith(MISSIONS):
            rest = path[len(MISSIONS):]
            head, slash, tail = rest.partition("/")
            if not slash:
                return await self._read(scope, send, "mission", head,
                                        "/api/v1/missions/{mission_id}")
            if tail == "prediction":
                return await self._read(scope, send, "prediction", head,
                                        "/api/v1/missions/{mission_id}/prediction")
            if tail == "events":
                return await self._stream(scope, receive, send, head, mission=True)
        elif path.startswith(STREAMERS):
            return await self._read(scope, send, "streamer", path[len(STREAMERS):],
                                    "/api/v1/streamers/{streamer_id}")
        elif path.startswith(CHANNELS) and path.endswith(EVENTS):
            return await self._stream(scope, receive, send,
                                      path[len(CHANNELS):-len(EVENTS)], mission=False)
        return False

    def _headers(self, scope: Scope) -> dict[bytes, bytes] | None:
        """The request's headers that matter here; None when the app must answer."""
        if carries_credentials(scope, self.auth_cookies):
            return None
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _NOT_HERE:
                return None
            found.setdefault(name, value)
        return found

    def _start(self, scope: Scope, status: int, headers: list[tuple[bytes, bytes]]) -> Message:
        if self.cors:
            vary_on_origin(headers)
        headers += self._security
        headers.append((b"x-request-id", request_id_of(scope).encode("latin-1")))
        return {"type": "http.response.start", "status": status, "headers": headers}

    # Cached public reads ------------------------------------------------------------------

    async def _read(self, scope: Scope, send: Send, what: str, raw_id: str,
                    template: str) -> bool:
        """``what`` is the read model's key kind for the route ``template``."""
        object_id = parse_id(raw_id)
        if object_id is None:
            return False
        cache = self.container.read_cache
        cache_key: Hashable = (what, object_id)
        entry = cache.peek(cache_key)
        if entry is None:
            return False
        headers = self._headers(scope)
        if headers is None:
            return False
        started = time.perf_counter()
        cache.listen(self.container.broker)
        heads = self._read_heads.get(entry.etag) or self._encode_read_heads(scope, entry)
        condition = headers.get(b"if-none-match")
        if condition and read_cache.matches(condition.decode("latin-1"), entry.etag):
            status, body, head = 304, b"", heads[1]
        else:
            status, body, head = 200, entry.body, heads[0]
        request_id = request_id_of(scope)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*head, (b"x-request-id", request_id.encode("latin-1"))]})
        await send({"type": "http.response.body", "body": body})
        self._read_log.record("GET", template, status, started, request_id)
        return True

    def _encode_read_heads(self, scope: Scope, entry: Entry
                           ) -> tuple[list[tuple[bytes, bytes]], ...]:
        """The 200 and 304 headers of ``entry``, as :meth:`_start` makes them, without the
        request id (which :meth:`_start` adds last)."""
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in read_cache.entry_headers(entry).items()]
        full = [*raw, (b"content-length", str(len(entry.body)).encode("latin-1")), _JSON]
        heads = (self._start(scope, 200, full)["headers"][:-1],
                 self._start(scope, 304, raw)["headers"][:-1])
        if len(self._read_heads) >= _READ_HEADS_KEPT:
            self._read_heads.clear()  # hot entries come back at their next hit
        self._read_heads[entry.etag] = heads
        return heads

    # Public live streams ------------------------------------------------------------------

    async def _stream(self, scope: Scope, receive: Receive, send: Send, raw_id: str, *,
                      mission: bool) -> bool:
        admitted = await self._admit(scope, raw_id, mission=mission)
        if admitted is None:
            return False
        stream, slot = admitted
        template = ("/api/v1/missions/{mission_id}/events" if mission
                    else "/api/v1/channels/{streamer_id}/events")
        started = time.perf_counter()
        gone = ClientGone(receive, stream.leave)
        status = 200
        sent_start = False
        try:
            chunk: bytes | None = await stream.open()
            await send(self._start(scope, 200, list(_STREAM_START)))
            sent_start = True
            while chunk is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                # The opening is this stream's own bytes; every later chunk is shared.
                chunk = None
                chunk = await stream.next()
            if not gone.left:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception as exc:
            # What the last-resort middleware does for the app's own streams.
            report_unhandled(scope, exc, template)
            if not sent_start:
                status = 500
                await self._internal_error(scope, receive, send)
        finally:
            slot.release()
            gone.close()
            stream.close()
            record_request("GET", template, status, started, request_id=request_id_of(scope))
        return True

    async def _admit(self, scope: Scope, raw_id: str, *,
                     mission: bool) -> tuple[LiveStream, Slot] | None:
        """The stream and its slot; None (nothing taken) when the app must answer.

        Only what the stream needs outlives this call: an open stream keeps no row,
        connection or header of its lookup.
        """
        object_id = parse_id(raw_id)
        headers = self._headers(scope)
        if object_id is None or headers is None:
            return None
        c = self.container
        try:
            async with c.core_db.read() as conn:
                if mission:
                    found = await get_mission(conn, object_id, c.clock.now())
                    streamer_id, mission_id = int(found["streamer_id"]), object_id
                else:
                    await channels.get_streamer(conn, object_id, c.clock.now())
                    streamer_id, mission_id = object_id, None
            address = await client_address(Request(scope), c)
            slot = admit(gate_in(self.state, c.settings), address)
        except _FALL_THROUGH:
            # Nothing sent yet: the app answers 404, 429 or 503 with its problem document.
            return None
        last_event_id = headers.get(b"last-event-id")
        stream = LiveStream(c, hub_in(self.state, c), streamer_id=streamer_id,
                            mission_id=mission_id,
                            last_event_id=last_event_id.decode("latin-1")
                            if last_event_id is not None else None)
        return stream, slot

    async def _internal_error(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer: ASGIApp = RequestIdMiddleware(SecurityHeadersMiddleware(
            internal_error(request_id_of(scope)), hsts=self.hsts,
            auth_cookies=self.auth_cookies))
        await answer(scope, receive, send)
