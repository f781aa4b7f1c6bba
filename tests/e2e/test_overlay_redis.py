"""Two API processes sharing Redis: a pledge made on one reaches an overlay held by the other.

Needs ``MISSIONLINK_TEST_REDIS_URL`` (e.g. redis://127.0.0.1:6379/15); under ``CI=true`` a
missing URL fails the run instead of skipping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from missionlink.bootstrap import Container
from missionlink.domain.clock import SystemClock
from tests.conftest import redis_test_url
from tests.e2e.sse import open_stream
from tests.helpers import Actor, make_user, settle_all, stop_process

START_TIMEOUT = 30.0


def redis_url() -> str:
    return redis_test_url("the two-process overlay test")


@pytest.fixture
def clock() -> SystemClock:
    # The API processes stamp events with the real time; the test's worker must agree.
    return SystemClock()


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # The test's own container (and so its worker) publishes through the same Redis.
    return {"broker_url": redis_url()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _serve(container: Container, logs: Path) -> Iterator[str]:
    """``missionlink serve`` in a child process, on the test's databases and Redis."""
    settings = container.settings
    port = _free_port()
    env = {
        **os.environ,
        "MISSIONLINK_DATA_DIR": str(settings.data_dir),
        "MISSIONLINK_DATABASE_URL": settings.database_url,
        "MISSIONLINK_IDENTITY_DATABASE_URL": settings.identity_database_url,
        "MISSIONLINK_BROKER_URL": settings.broker_url,
        "MISSIONLINK_SERVE_WORKER": "0",
        "MISSIONLINK_METRICS_PORT": "0",
    }
    command = [sys.executable, "-c", "from missionlink.cli import main; raise SystemExit(main())",
               "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(logs / f"serve-{port}.log", "wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, grace=10)


async def _wait_ready(url: str, logs: Path) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        for _ in range(int(START_TIMEOUT / 0.2)):
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    output = "\n".join(p.read_text(errors="replace") for p in logs.glob("serve-*.log"))
    raise AssertionError(f"{url} did not start:\n{output}")


async def _wait_subscribed(channel: str) -> None:
    """Redis pub/sub drops messages nobody is subscribed to yet: wait for the listener."""
    import redis.asyncio as redis

    client = redis.from_url(redis_url())
    try:
        async with asyncio.timeout(10):
            while True:
                counts = await client.pubsub_numsub(f"missionlink:{channel}")
                if counts and counts[0][1] > 0:
                    return
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


@pytest.fixture
async def two_processes(container: Container, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    with _serve(container, tmp_path) as a, _serve(container, tmp_path) as b:
        await asyncio.gather(_wait_ready(a, tmp_path), _wait_ready(b, tmp_path))
        yield a, b


async def test_a_pledge_on_one_process_reaches_an_overlay_on_the_other(
    container: Container, two_processes: tuple[str, str]
) -> None:
    a, b = two_processes
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    backer = await make_user(container, name="다른서버팬")

    async with httpx.AsyncClient(base_url=a, timeout=10) as api_a:
        async def post(path: str, who: Actor, body: dict[str, object]) -> dict[str, object]:
            r = await api_a.post(path, json=body, headers=who.headers)
            assert r.status_code in (200, 201), r.text
            data: dict[str, object] = r.json()
            return data

        for who in (creator, backer):
            await post("/api/v1/wallet/topups", who, {"amount": 50_000})
        mission = await post("/api/v1/missions", creator, {
            "streamer_id": streamer.id, "title": "두 서버 미션", "amount": 10_000,
            "duration_seconds": 3600})
        await settle_all(container)
        r = await api_a.get("/api/v1/streamers/me/overlay", headers=streamer.headers)
        token = str(r.json()["url"]).rsplit("/", 1)[1]

        async with open_stream(b, f"/api/v1/overlay/{token}/events") as stream:
            _, snap = await stream.next_data()
            assert [m["id"] for m in snap["missions"]] == [mission["id"]]
            await _wait_subscribed(f"channel:{streamer.id}")
            await post(f"/api/v1/missions/{mission['id']}/pledges", backer, {"amount": 4_000})
            await settle_all(container)
            while True:
                _, event = await stream.until("pledge.created")
                if event["user_id"] == backer.id:
                    break
    assert event["mission_id"] == mission["id"]
    assert event["amount"] == 4_000 and event["total_pledged"] == 14_000
    assert event["display_name"] == "다른서버팬"
