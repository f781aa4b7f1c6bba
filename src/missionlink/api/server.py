"""The HTTP/1.1 protocol ``missionlink serve`` runs: uvicorn's, with deadlines for slow clients.

uvicorn only times out idle keep-alive connections: a client that sends its request line,
headers or body one byte at a time, or that stops reading a response, holds a connection
and a task for as long as it likes. This protocol adds three deadlines:

- headers: from the connection's start (or the end of the previous response) until the
  last header line, ``REQUEST_READ_TIMEOUT_SECONDS``;
- body: from the end of the headers until the last body byte, the same time again;
- writing: while the transport's buffer is over its high-water mark (the client is not
  reading), ``RESPONSE_WRITE_TIMEOUT_SECONDS``; a live stream whose viewer stalls is
  dropped and its slot freed.

A request that started but ran out of time gets ``408`` problem+json and the connection
is closed; a connection that never sent a byte, or a stalled reader, is just closed.

On shutdown (SIGTERM) uvicorn stops listening, closes idle connections and lets requests
in flight finish (``timeout_graceful_shutdown``). Live streams never finish on their own,
so the first connection asked to shut down also starts :func:`stream_gate.draining`:
every stream of the process ends cleanly and its client resumes on another replica.
See docs/decisions/0002-http-server.md for why uvicorn and not another server.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from missionlink.api import stream_gate
from missionlink.observability import metrics

_PROBLEM_TYPE = "https://missionlink.example.com/errors/request-timeout"


@dataclass(frozen=True)
class Deadlines:
    read: float
    write: float


@cache
def deadlines() -> Deadlines:
    """Read once per process: ``serve --workers N`` starts each worker from the environment."""
    from missionlink.config import Settings

    settings = Settings()
    return Deadlines(settings.request_read_timeout_seconds,
                     settings.response_write_timeout_seconds)


def _timeout_response(detail: str) -> bytes:
    body = json.dumps({"type": _PROBLEM_TYPE, "title": "Request timeout", "status": 408,
                       "detail": detail}).encode()
    head = (b"HTTP/1.1 408 Request Timeout\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"x-content-type-options: nosniff\r\n"
            b"connection: close\r\n\r\n")
    return head + body


class DeadlineHttpProtocol(HttpToolsProtocol):
    # Slots, not the instance dict: five more keys would push uvicorn's per-connection
    # dict past the size that instances share: 1.3 KB more for every open
    # connection (a public live stream holds one for as long as it lives).
    __slots__ = (
        "_read_seconds",
        "_read_timer",
        "_request_begun",
        "_write_seconds",
        "_write_timer",
    )
    #: Set on a subclass to run with fixed deadlines instead of the settings.
    limits: Deadlines | None = None

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = self.limits or deadlines()
        self._read_seconds = limits.read
        self._write_seconds = limits.write
        self._read_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._request_begun = False

    # Connection lifecycle
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read(self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read()
        self._disarm_write()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server is shutting down: end the live streams, then uvicorn's own steps."""
        stream_gate.draining(self.loop).begin()
        super().shutdown()

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True

    def on_headers_complete(self) -> None:
        self._request_begun = False
        super().on_headers_complete()
        # httptools calls on_message_complete right after this when there is no body.
        self._arm_read(self._body_late)

    def on_message_complete(self) -> None:
        self._disarm_read()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # With pipelined requests still queued, the clock starts after the last of them.
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self._arm_read(self._headers_late)

    # Flow control: the transport calls these as its buffer crosses the water marks.
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self._write_seconds, self._not_reading)

    def resume_writing(self) -> None:
        self._disarm_write()
        super().resume_writing()

    # Deadlines
    def _arm_read(self, callback: Any) -> None:
        self._disarm_read()
        self._read_timer = self.loop.call_later(self._read_seconds, callback)

    def _disarm_read(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _disarm_write(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _headers_late(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; the next one's clock starts after it
        metrics.SLOW_CLIENTS.labels("headers").inc()
        if self._request_begun:
            self.transport.write(_timeout_response(
                f"the request headers did not arrive within {self._read_seconds:g} s"))
        self.transport.close()

    def _body_late(self) -> None:
        self._read_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body:
            return
        metrics.SLOW_CLIENTS.labels("body").inc()
        answered = cycle.response_started
        # The application sees the client as gone (its body read ends, its sends are
        # dropped), so nothing else is written on this connection.
        cycle.disconnected = True
        cycle.message_event.set()
        if not answered:
            self.transport.write(_timeout_response(
                f"the request body did not arrive within {self._read_seconds:g} s"))
        self.transport.close()

    def _not_reading(self) -> None:
        self._write_timer = None
        if self.transport.is_closing() and self.transport.get_write_buffer_size() == 0:
            return
        metrics.SLOW_CLIENTS.labels("write").inc()
        # close() would wait for the buffer to drain, which is what never happens.
        self.transport.abort()
