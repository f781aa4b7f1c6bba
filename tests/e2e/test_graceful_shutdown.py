"""SIGTERM to ``missionlink serve`` (a rolling deploy): a request in flight gets its whole
answer, live streams end cleanly at once (their clients resume on another replica) rather
than holding the shutdown until uvicorn's graceful timeout cuts them, and the process
exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from missionlink.bootstrap import Container
from tests.e2e.sse import open_stream
from tests.helpers import Actor, make_user

#: uvicorn's graceful timeout in ``serve``; a stream that held the shutdown would take this.
GRACEFUL_SECONDS = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def serve(container: Container, tmp_path: Path) -> AsyncIterator[
        tuple[subprocess.Popen[bytes], str]]:
    s = container.settings
    port = _free_port()
    env = {
        **os.environ,
        "MISSIONLINK_DATA_DIR": str(s.data_dir),
        "MISSIONLINK_DATABASE_URL": s.database_url,
        "MISSIONLINK_IDENTITY_DATABASE_URL": s.identity_database_url,
        "MISSIONLINK_RATE_LIMIT_SIGNUPS_PER_MINUTE": "0",
    }
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "missionlink.cli", "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded machine starts slowly
        while True:
            try:
                async with httpx.AsyncClient() as http:
                    if (await http.get(f"{base}/healthz", timeout=1)).status_code == 200:
                        break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            await asyncio.sleep(0.2)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        log.close()


async def _overlay_path(base: str, streamer: Actor) -> str:
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.get("/api/v1/streamers/me/overlay", headers=streamer.headers)
    assert r.status_code == 200, r.text
    token = r.json()["url"].rsplit("/", 1)[1]
    return f"/api/v1/overlay/{token}/events"


async def _slow_top_up(port: int, fan: Actor, sent_half: asyncio.Event,
                       finish: asyncio.Event) -> bytes:
    """A top-up whose body arrives in two halves, the second only once ``finish`` is set."""
    body = json.dumps({"amount": 5000}).encode()
    head = (f"POST /api/v1/wallet/topups HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            f"authorization: {fan.headers['Authorization']}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body[:5])
        await writer.drain()
        sent_half.set()
        await finish.wait()
        writer.write(body[5:])
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=GRACEFUL_SECONDS)
    finally:
        writer.close()


async def test_sigterm_finishes_requests_in_flight_and_ends_live_streams_at_once(
    container: Container, serve: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, base = serve
    port = int(base.rsplit(":", 1)[1])
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    overlay = await _overlay_path(base, streamer)
    channel = f"/api/v1/channels/{streamer.id}/events"

    async with open_stream(base, overlay) as overlay_events, \
            open_stream(base, channel) as channel_events:
        for events in (overlay_events, channel_events):
            _, snap = await events.next_data()
            assert snap["type"] == "snapshot"
        sent_half, finish = asyncio.Event(), asyncio.Event()
        top_up = asyncio.create_task(_slow_top_up(port, fan, sent_half, finish))
        await asyncio.wait_for(sent_half.wait(), timeout=5)
        await asyncio.sleep(0.2)  # the server has read the headers: the request is in flight

        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # Both streams end cleanly (a cut one would raise a protocol error here).
        await asyncio.gather(overlay_events.until_closed(timeout=5),
                             channel_events.until_closed(timeout=5))
        streams_ended = time.monotonic() - signalled
        assert proc.poll() is None, "the server quit with a request still in flight"

        # The slow client takes its time: the request still gets its whole answer.
        await asyncio.sleep(1.0)
        finish.set()
        answer = await top_up

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 201 Created", answer
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["amount"] == 5000
    assert streams_ended < 3, f"the streams held the shutdown for {streams_ended:.1f} s"
    assert await asyncio.to_thread(proc.wait, GRACEFUL_SECONDS) == 0
    assert time.monotonic() - signalled < GRACEFUL_SECONDS - 3
