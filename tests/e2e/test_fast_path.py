"""The front layer answers the hottest public paths exactly as the app behind it would.

Each request goes once through an app with the front layer and once through the same
container's app without it; status, body and every header must agree (only the value of a
generated ``X-Request-Id`` and ``Date`` may differ). Streams are read over a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI

from missionlink.api import fast_path
from missionlink.api.app import create_app
from missionlink.api.stream_gate import StreamGate
from missionlink.bootstrap import Container
from missionlink.observability.metrics import REQUESTS
from tests.e2e.parity import headers_of, same
from tests.e2e.sse import live_server, open_stream
from tests.helpers import Actor, make_user, propose, settle_all, top_up

PER_ADDRESS = 2
LOG_EVERY = 3


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"sse_max_per_address": PER_ADDRESS, "log_cached_reads_every": LOG_EVERY}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths the front layer answered itself."""
    answered: list[str] = []
    serve = fast_path.FastPath._serve

    async def counting(self: fast_path.FastPath, scope: Any, receive: Any, send: Any) -> bool:
        done = await serve(self, scope, receive, send)
        if done:
            answered.append(scope["path"])
        return done

    monkeypatch.setattr(fast_path.FastPath, "_serve", counting)
    return answered


async def _world(client: httpx.AsyncClient, container: Container
                 ) -> tuple[Actor, Actor, dict[str, Any]]:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    await top_up(client, creator, 100_000)
    mission = await propose(client, creator, streamer)
    await settle_all(container)
    return streamer, creator, mission


def _reads(streamer: Actor, mission: dict[str, Any]) -> list[str]:
    return [f"/api/v1/missions/{mission['id']}", f"/api/v1/missions/{mission['id']}/prediction",
            f"/api/v1/streamers/{streamer.id}"]


async def test_cached_reads_match_the_app_byte_for_byte(
    client: httpx.AsyncClient, normal: httpx.AsyncClient, container: Container,
    served: list[str],
) -> None:
    streamer, _, mission = await _world(client, container)
    for path in _reads(streamer, mission):
        first = await client.get(path)  # a miss: the app loads and stores it
        assert first.status_code == 200 and path not in served
        hit = await same(client, normal, "GET", path)
        assert served.count(path) == 1
        assert hit.headers["cache-control"] == "public, max-age=1, stale-while-revalidate=5"
        assert hit.headers["x-content-type-options"] == "nosniff"
        etag = hit.headers["etag"]
        for condition in (etag, f'W/{etag}', f'"other", {etag}', "*"):
            r = await same(client, normal, "GET", path, headers={"If-None-Match": condition})
            assert r.status_code == 304 and r.content == b""
        r = await same(client, normal, "GET", path, headers={"If-None-Match": '"other"'})
        assert r.status_code == 200
        # A safe incoming id is echoed, an unsafe one replaced, by both.
        r = await same(client, normal, "GET", path, headers={"X-Request-Id": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        r = await same(client, normal, "GET", path, headers={"X-Request-Id": "a b\x7f"})
        assert r.headers["x-request-id"] != "a b\x7f"
        assert served.count(path) == 8


async def test_a_caller_with_credentials_is_never_answered_from_the_front(
    client: httpx.AsyncClient, normal: httpx.AsyncClient, container: Container,
    served: list[str],
) -> None:
    streamer, creator, mission = await _world(client, container)
    for path in _reads(streamer, mission):
        await client.get(path)
        served.clear()
        for headers in (creator.headers, {"Cookie": "ml_refresh=x"}):
            r = await same(client, normal, "GET", path, headers=headers)
            assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        # CORS answers a browser's cross-origin request, a body goes to the body limit.
        r = await same(client, normal, "GET", path,
                        headers={"Origin": "https://app.missionlink.example.com"})
        assert r.headers["access-control-allow-origin"] == "https://app.missionlink.example.com"
        await same(client, normal, "GET", path, content=b"x" * 10)
        assert served == []


async def test_bad_ids_unknown_rows_and_other_methods_answer_as_the_app(
    client: httpx.AsyncClient, normal: httpx.AsyncClient, container: Container,
    served: list[str],
) -> None:
    streamer, _, mission = await _world(client, container)
    for path in _reads(streamer, mission):
        await client.get(path)
    bad = ["0", "-1", "+1", "1_0", "\uff11", str(2**63), "9" * 40, "abc", "987654321"]
    for template in ("/api/v1/missions/{}", "/api/v1/missions/{}/prediction",
                     "/api/v1/streamers/{}", "/api/v1/missions/{}/events",
                     "/api/v1/channels/{}/events"):
        for raw in bad:
            r = await same(client, normal, "GET", template.format(raw))
            assert r.status_code in (404, 422), (template, raw)
            assert r.headers["content-type"].startswith("application/problem+json")
    # HEAD is the app's to answer (and it answers the same).
    await same(client, normal, "HEAD", f"/api/v1/missions/{mission['id']}")
    await same(client, normal, "GET", f"/api/v1/missions/{mission['id']}/")
    assert served == []


async def test_the_front_counts_requests_under_the_route_template(
    client: httpx.AsyncClient, container: Container, served: list[str],
) -> None:
    _, _, mission = await _world(client, container)
    path = f"/api/v1/missions/{mission['id']}"
    await client.get(path)
    hist = REQUESTS.labels(method="GET", route="/api/v1/missions/{mission_id}", status="200")
    count_before = _count(hist)
    await client.get(path)
    assert served == [path]
    assert _count(hist) == count_before + 1


async def test_a_changed_read_is_answered_with_its_new_headers(
    client: httpx.AsyncClient, normal: httpx.AsyncClient, container: Container,
    served: list[str],
) -> None:
    _, creator, mission = await _world(client, container)
    path = f"/api/v1/missions/{mission['id']}"
    await client.get(path)
    # A 304 first, then a 200, from the same entry.
    etag = (await client.get(path)).headers["etag"]
    r = await same(client, normal, "GET", path, headers={"If-None-Match": etag})
    assert r.status_code == 304
    old = await same(client, normal, "GET", path)
    r = await client.post(f"{path}/pledges", json={"amount": 1000},
                          headers={**creator.headers, "Idempotency-Key": "front-changed-1"})
    assert r.status_code == 201, r.text
    await client.get(path)  # the write dropped the entry: the app loads it again
    new = await same(client, normal, "GET", path)
    assert new.headers["etag"] != old.headers["etag"] and new.content != old.content
    assert new.headers["content-length"] == str(len(new.content))
    r = await same(client, normal, "GET", path, headers={"If-None-Match": old.headers["etag"]})
    assert r.status_code == 200
    assert served.count(path) == 5


async def test_cached_reads_are_counted_each_and_logged_one_in_n(
    client: httpx.AsyncClient, container: Container, served: list[str],
) -> None:
    _, _, mission = await _world(client, container)
    path = f"/api/v1/missions/{mission['id']}"
    await client.get(path)
    hist = REQUESTS.labels(method="GET", route="/api/v1/missions/{mission_id}", status="200")
    before = _count(hist)
    with structlog.testing.capture_logs() as logs:
        ids = [(await client.get(path)).headers["x-request-id"] for _ in range(2 * LOG_EVERY)]
    assert served == [path] * 2 * LOG_EVERY
    assert _count(hist) == before + 2 * LOG_EVERY
    lines = [e for e in logs if e["event"] == "request"]
    assert [(e["request_id"], e["count"]) for e in lines] == [
        (ids[LOG_EVERY - 1], LOG_EVERY), (ids[-1], LOG_EVERY)]
    assert lines[0]["route"] == "/api/v1/missions/{mission_id}" and lines[0]["status"] == 200


def _count(hist: Any) -> float:
    return float(sum(bucket.get() for bucket in hist._buckets))


# Live streams over a real socket -------------------------------------------------------


@contextlib.asynccontextmanager
async def _servers(container: Container) -> AsyncIterator[tuple[str, str, FastAPI]]:
    fast_app = create_app(container)
    normal_app = create_app(container, fast_path=False)
    async with live_server(fast_app) as fast, live_server(normal_app) as normal:
        yield fast, normal, fast_app


async def _opening(base: str, path: str, headers: dict[str, str] | None = None
                   ) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and the bytes up to the end of the snapshot event."""
    async with (httpx.AsyncClient(base_url=base, timeout=10) as http,
                http.stream("GET", path, headers=headers) as r):
        head = headers_of(r)
        body = b""
        if r.status_code == 200:
            async for chunk in r.aiter_bytes():
                body += chunk
                if body.count(b"\n\n") >= 2:  # retry hint, then the snapshot
                    break
        else:
            body = await r.aread()
        return r.status_code, head, body


def _without_server_time(body: bytes) -> bytes:
    import re

    return re.sub(rb'"server_time":"[^"]*"', b"", body)


async def test_streams_open_with_the_same_headers_snapshot_and_resume(
    client: httpx.AsyncClient, container: Container, served: list[str],
) -> None:
    streamer, creator, mission = await _world(client, container)
    paths = [f"/api/v1/missions/{mission['id']}/events", f"/api/v1/channels/{streamer.id}/events"]
    async with _servers(container) as (fast, normal, _):
        for path in paths:
            for headers in (None, {"Last-Event-ID": "p0"}):
                a = await _opening(fast, path, headers)
                b = await _opening(normal, path, headers)
                assert a[0] == b[0] == 200
                assert a[1] == b[1]
                assert _without_server_time(a[2]) == _without_server_time(b[2])
        assert sorted(set(served)) == sorted(paths)
        # A live pledge reaches a stream served by the front, then resumes from its id.
        async with open_stream(fast, paths[0]) as stream:
            last_id, _ = await stream.next_data()
            r = await client.post(f"/api/v1/missions/{mission['id']}/pledges",
                                  json={"amount": 2_000}, headers=creator.headers)
            assert r.status_code == 201, r.text
            await settle_all(container)
            event_id, pledge = await stream.until("pledge.created")
        assert pledge["amount"] == 2_000 and event_id == f"p{pledge['pledge_id']}"
        async with open_stream(fast, paths[0], {"Last-Event-ID": str(last_id)}) as stream:
            await stream.next_data()
            replay_id, replayed = await stream.next_data()
        assert replayed["replayed"] is True and replay_id == event_id


async def test_stream_caps_and_slots_given_back_when_the_client_leaves(
    client: httpx.AsyncClient, container: Container, served: list[str],
) -> None:
    _, _, mission = await _world(client, container)
    path = f"/api/v1/missions/{mission['id']}/events"
    async with _servers(container) as (fast, normal, fast_app):
        async with contextlib.AsyncExitStack() as stack:
            # Each reader is kept: a dropped one closes its connection when it is collected.
            streams = [await stack.enter_async_context(open_stream(base, path))
                       for base in (fast, normal) for _ in range(PER_ADDRESS)]
            for stream in streams:
                await stream.next_data()
            gate: StreamGate = fast_app.state.stream_gate
            assert gate.open == PER_ADDRESS
            refused, also_refused = await _opening(fast, path), await _opening(normal, path)
        assert refused == also_refused
        status, headers, body = refused
        assert status == 429 and b"/rate-limited" in body
        assert int(dict(headers)["retry-after"]) > 0
        # The clients hung up while their streams waited for the next event.
        async with asyncio.timeout(10):
            while gate.open:
                await asyncio.sleep(0.02)
        hub = fast_app.state.live_hub
        async with asyncio.timeout(10):
            while hub.topics:
                await asyncio.sleep(0.02)
        async with open_stream(fast, path) as stream:
            await stream.next_data()
    assert served.count(path) == PER_ADDRESS + 1
