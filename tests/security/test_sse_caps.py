"""Live streams are capped per overlay token, per client address and per process; a slot is
given back however a stream ends (client gone, error, a reader that stopped reading)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI

from missionlink.api import overlay_stream
from missionlink.api.app import create_app
from missionlink.api.overlay_stream import channel_topic
from missionlink.api.server import DeadlineHttpProtocol, Deadlines
from missionlink.api.stream_gate import StreamGate
from missionlink.bootstrap import Container
from tests.e2e.sse import TIMEOUT, live_server, open_stream
from tests.helpers import Actor, make_user


class _QuickDrop(DeadlineHttpProtocol):
    limits = Deadlines(read=5.0, write=0.5)


def _serve(app: FastAPI) -> contextlib.AbstractAsyncContextManager[str]:
    """``app`` on 127.0.0.1 behind the protocol ``missionlink serve`` runs."""
    return live_server(app, http=_QuickDrop)


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container)


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    async with _serve(app) as url:
        yield url


def _open(app: FastAPI) -> int:
    """Streams the process counts as open (its gate appears with the first stream)."""
    gate: StreamGate | None = getattr(app.state, "stream_gate", None)
    return gate.open if gate is not None else 0


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await asyncio.sleep(0.02)


async def _events_path(client: httpx.AsyncClient, streamer: Actor) -> str:
    r = await client.get("/api/v1/streamers/me/overlay", headers=streamer.headers)
    token = r.json()["url"].rsplit("/", 1)[1]
    return f"/api/v1/overlay/{token}/events"


def _caps(token: int = 0, address: int = 0, process: int = 0) -> pytest.MarkDecorator:
    overrides = {"sse_max_per_token": token, "sse_max_per_address": address,
                 "sse_max_per_process": process}
    return pytest.mark.parametrize("settings_overrides", [overrides])


async def _refused(base_url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT) as http:
        return await http.get(path)


def _assert_problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["type"].endswith("/" + code)


@_caps(token=2)
async def test_one_overlay_token_holds_at_most_its_share_of_streams(
    client: httpx.AsyncClient, container: Container, app: FastAPI, server: str
) -> None:
    streamer = await make_user(container, "streamer")
    other = await make_user(container, "streamer")
    path = await _events_path(client, streamer)
    async with open_stream(server, path) as first, open_stream(server, path):
        await first.next()
        _assert_problem(await _refused(server, path), 429, "rate-limited")
        # Another channel's overlay is not affected.
        async with open_stream(server, await _events_path(client, other)) as elsewhere:
            await elsewhere.next()
    await _until(lambda: _open(app) == 0)
    async with open_stream(server, path) as again:
        assert (await again.next()).retry is not None


@_caps(address=2)
async def test_one_client_address_holds_at_most_its_share_of_streams(
    client: httpx.AsyncClient, container: Container, app: FastAPI, server: str
) -> None:
    paths = [await _events_path(client, await make_user(container, "streamer"))
             for _ in range(3)]
    async with open_stream(server, paths[0]), open_stream(server, paths[1]):
        _assert_problem(await _refused(server, paths[2]), 429, "rate-limited")
    await _until(lambda: _open(app) == 0)
    async with open_stream(server, paths[2]) as stream:
        await stream.next()


@_caps(process=1)
async def test_a_full_process_answers_503_with_retry_after(
    client: httpx.AsyncClient, container: Container, app: FastAPI, server: str
) -> None:
    first = await _events_path(client, await make_user(container, "streamer"))
    second = await _events_path(client, await make_user(container, "streamer"))
    async with open_stream(server, first):
        _assert_problem(await _refused(server, second), 503, "streams-full")
    await _until(lambda: _open(app) == 0)
    async with open_stream(server, second) as stream:
        await stream.next()


@_caps(token=1)
async def test_a_stream_that_fails_gives_its_slot_back(
    client: httpx.AsyncClient, container: Container, app: FastAPI, server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    streamer = await make_user(container, "streamer")
    path = await _events_path(client, streamer)

    async def broken(self: overlay_stream.OverlayStream) -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(overlay_stream.OverlayStream, "events", broken)
        async with open_stream(server, path) as stream:
            await stream.next()
            await _until(lambda: _open(app) == 0)
    async with open_stream(server, path) as stream:
        await stream.next()


@contextlib.contextmanager
def _stalled_reader(base_url: str, path: str) -> Iterator[socket.socket]:
    """A client that asks for the stream and then never reads a byte of it."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
                 .encode())
    try:
        yield sock
    finally:
        sock.close()


@_caps(token=1)
async def test_a_viewer_that_stops_reading_is_dropped_and_frees_its_slot(
    client: httpx.AsyncClient, container: Container, app: FastAPI, server: str
) -> None:
    streamer = await make_user(container, "streamer")
    path = await _events_path(client, streamer)
    with _stalled_reader(server, path):
        await _until(lambda: _open(app) == 1)
        # Live events keep coming; the reader's buffers fill and the server stops waiting.
        event = {"type": "mission.updated", "padding": "x" * 8000}
        async with asyncio.timeout(TIMEOUT * 3):
            while _open(app):
                for _ in range(50):
                    await container.broker.publish(channel_topic(streamer.id), event)
                await asyncio.sleep(0.01)
        # The one slot this token has is free again while the stalled socket is still open.
        async with open_stream(server, path) as stream:
            await stream.next()
