"""Test helpers for the overlay stream: a real HTTP server and a server-sent-events reader.

httpx's ASGI transport buffers a whole response, so streams are read over a socket from a
uvicorn server running in the test's event loop (127.0.0.1, a free port).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

#: How long a live-stream test waits for what must come; only a failing test waits it out,
#: and a machine busy with parallel test workers can hold a first query for seconds.
TIMEOUT = 20.0


@contextlib.asynccontextmanager
async def live_server(app: FastAPI, *, http: Any = "auto") -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 until the block ends; yields the base URL.

    ``http`` is uvicorn's HTTP protocol (a class, such as the one ``missionlink serve`` runs).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # lifespan off: the test's container fixture owns (and closes) the container.
    config = uvicorn.Config(app, http=http, lifespan="off", log_level="warning", ws="none",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(TIMEOUT):
            await task
        sock.close()


class StreamEnded(Exception):
    """The server closed the stream."""


@dataclass
class Event:
    id: str | None = None
    data: dict[str, Any] | None = None
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


class EventReader:
    """Parses ``text/event-stream`` lines into events (comments kept for heartbeats)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = TIMEOUT) -> Event:
        event = Event()
        data: list[str] = []
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line == "":
                    if data:
                        event.data = json.loads("\n".join(data))
                    return event
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    event.comments.append(value)
                elif name == "id":
                    event.id = value
                elif name == "data":
                    data.append(value)
                elif name == "retry":
                    event.retry = int(value)
        raise StreamEnded

    async def until_closed(self, timeout: float = TIMEOUT) -> None:
        """Read (and drop) events until the server closes the stream."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await self.next(timeout)
                except StreamEnded:
                    return

    async def next_data(self, timeout: float = TIMEOUT) -> tuple[str | None, dict[str, Any]]:
        """The next event that carries data (skips heartbeats and retry hints)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next(timeout)
                if event.data is not None:
                    return event.id, event.data

    async def until(self, type_: str, timeout: float = TIMEOUT) -> tuple[str | None,
                                                                          dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while True:
                event_id, data = await self.next_data(timeout)
                if data.get("type") == type_:
                    return event_id, data


@contextlib.asynccontextmanager
async def open_stream(
    base_url: str, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[EventReader]:
    timeout = httpx.Timeout(TIMEOUT)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=timeout) as http,
        http.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)
