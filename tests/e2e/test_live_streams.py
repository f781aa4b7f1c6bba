"""Public live streams of a mission and of a channel, over a real socket.

Snapshot first, then the channel's events (a mission's stream only its own), resume with
``Last-Event-ID``, the stream caps, one broker subscription per topic and process however
many viewers, and two API processes sharing Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from missionlink.api import live_hub, overlay_stream
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.domain.clock import SystemClock
from tests.e2e import test_overlay_redis as redis_e2e
from tests.e2e.sse import EventReader, live_server, open_stream
from tests.helpers import Actor, make_user, propose, settle_all, top_up

PER_ADDRESS = 3


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"sse_max_per_address": PER_ADDRESS}


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container)


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    async with live_server(app) as url:
        yield url


async def _pledge(client: httpx.AsyncClient, who: Actor, mission_id: int, amount: int) -> None:
    r = await client.post(f"/api/v1/missions/{mission_id}/pledges", json={"amount": amount},
                          headers=who.headers)
    assert r.status_code == 201, r.text


async def _channel_with_two_missions(
    client: httpx.AsyncClient, container: Container
) -> tuple[Actor, Actor, dict[str, Any], dict[str, Any]]:
    """A streamer with two open missions (from two creators) and a funded backer."""
    streamer = await make_user(container, "streamer")
    first, second = await make_user(container), await make_user(container)
    backer = await make_user(container, name="관객")
    for who in (first, second, backer):
        await top_up(client, who, 100_000)
    one = await propose(client, first, streamer, title="첫 미션")
    other = await propose(client, second, streamer, title="다른 미션")
    await settle_all(container)
    return streamer, backer, one, other


async def test_channel_stream_sends_open_missions_then_each_pledge(
    client: httpx.AsyncClient, container: Container, server: str
) -> None:
    streamer, backer, one, other = await _channel_with_two_missions(client, container)
    async with open_stream(server, f"/api/v1/channels/{streamer.id}/events") as stream:
        first = await stream.next()
        assert first.retry == overlay_stream.RETRY_MILLISECONDS
        snap_id, snap = await stream.next_data()
        assert snap["type"] == "snapshot" and snap["streamer_id"] == streamer.id
        assert {m["id"] for m in snap["missions"]} == {one["id"], other["id"]}
        assert snap_id is not None and snap_id.startswith("p")
        await _pledge(client, backer, other["id"], 3_000)
        await settle_all(container)
        event_id, pledge = await stream.until("pledge.created")
    assert pledge["mission_id"] == other["id"] and pledge["amount"] == 3_000
    assert pledge["total_pledged"] == 13_000 and pledge["display_name"] == "관객"
    assert event_id == f"p{pledge['pledge_id']}"


async def test_mission_stream_shows_the_mission_and_only_its_own_events(
    client: httpx.AsyncClient, container: Container, server: str
) -> None:
    streamer, backer, one, other = await _channel_with_two_missions(client, container)
    shown = (await client.get(f"/api/v1/missions/{one['id']}")).json()
    async with open_stream(server, f"/api/v1/missions/{one['id']}/events") as stream:
        _, snap = await stream.next_data()
        assert snap["type"] == "snapshot" and snap["mission_id"] == one["id"]
        assert snap["mission"] == shown
        # The other mission's pledge goes first on the same topic: were it shown, it would be
        # the next event.
        await _pledge(client, backer, other["id"], 2_000)
        await _pledge(client, backer, one["id"], 4_000)
        await settle_all(container)
        event_id, pledge = await stream.next_data()
        assert pledge["type"] == "pledge.created"
        assert pledge["mission_id"] == one["id"] and pledge["amount"] == 4_000
        assert event_id == f"p{pledge['pledge_id']}"
        await client.post(f"/api/v1/missions/{other['id']}/accept", headers=streamer.headers)
        await client.post(f"/api/v1/missions/{one['id']}/accept", headers=streamer.headers)
        await settle_all(container)
        event = await _next_event_with_data(stream)
    assert event.data is not None and event.data["type"] == "mission.accepted"
    assert event.data["mission_id"] == one["id"]
    assert event.data["mission"]["status"] == "accepted"
    # Only pledges carry an id, so a client's Last-Event-ID stays the newest pledge it saw.
    assert event.id is None


async def _next_event_with_data(stream: EventReader) -> Any:
    while True:
        event = await stream.next()
        if event.data is not None:
            return event


async def test_last_event_id_replays_the_missed_pledges_of_that_mission(
    client: httpx.AsyncClient, container: Container, server: str
) -> None:
    _, backer, one, other = await _channel_with_two_missions(client, container)
    path = f"/api/v1/missions/{one['id']}/events"
    async with open_stream(server, path) as stream:
        last_id, _ = await stream.next_data()
    await _pledge(client, backer, one["id"], 1_000)
    await _pledge(client, backer, other["id"], 5_000)
    await _pledge(client, backer, one["id"], 2_000)
    async with open_stream(server, path, {"Last-Event-ID": str(last_id)}) as stream:
        _, snap = await stream.next_data()
        assert snap["type"] == "snapshot" and snap["mission"]["total_pledged"] == 13_000
        missed = [await stream.next_data() for _ in range(2)]
        assert [d["amount"] for _, d in missed] == [1_000, 2_000]
        assert [d["total_pledged"] for _, d in missed] == [11_000, 13_000]
        assert all(d["replayed"] is True and d["mission_id"] == one["id"] for _, d in missed)
        assert [i for i, _ in missed] == [f"p{d['pledge_id']}" for _, d in missed]
        # Relayed now, after the stream opened: the replayed pledges are not shown twice.
        await settle_all(container)
        await _pledge(client, backer, one["id"], 3_000)
        await settle_all(container)
        _, live = await stream.until("pledge.created")
    assert live["amount"] == 3_000 and "replayed" not in live


async def test_unknown_mission_or_channel_is_404_before_any_stream(
    client: httpx.AsyncClient, container: Container
) -> None:
    viewer = await make_user(container)
    for path in ("/api/v1/missions/987654321/events",
                 "/api/v1/channels/987654321/events",
                 f"/api/v1/channels/{viewer.id}/events"):  # a viewer has no channel
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/not-found")
    r = await client.get("/api/v1/missions/\uff11\uff12/events")  # full-width digits
    assert r.status_code == 422


async def test_one_address_may_hold_only_its_share_of_streams(
    client: httpx.AsyncClient, container: Container, server: str
) -> None:
    streamer, _, one, _ = await _channel_with_two_missions(client, container)
    paths = [f"/api/v1/channels/{streamer.id}/events", f"/api/v1/missions/{one['id']}/events"]
    async with contextlib.AsyncExitStack() as stack:
        # Each reader is kept: a dropped one closes its connection when it is collected.
        streams = [await stack.enter_async_context(open_stream(server, paths[n % 2]))
                   for n in range(PER_ADDRESS)]
        for stream in streams:
            await stream.next_data()
        async with httpx.AsyncClient(base_url=server, timeout=10) as http:
            refused = await http.get(paths[1])
    assert refused.status_code == 429
    assert refused.json()["type"].endswith("/rate-limited")
    assert int(refused.headers["Retry-After"]) > 0
    async with open_stream(server, paths[1]) as stream:  # the slots came back
        await stream.next_data()


async def test_many_streams_of_one_channel_share_one_broker_subscription(
    client: httpx.AsyncClient, container: Container, server: str, app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    streamer, backer, one, other = await _channel_with_two_missions(client, container)
    subscribe = container.broker.subscribe
    open_subscriptions: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def counted(channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        open_subscriptions[channel] += 1
        try:
            async with subscribe(channel) as queue:
                yield queue
        finally:
            open_subscriptions[channel] -= 1

    monkeypatch.setattr(container.broker, "subscribe", counted)
    topic = overlay_stream.channel_topic(streamer.id)
    paths = [f"/api/v1/channels/{streamer.id}/events", f"/api/v1/missions/{one['id']}/events",
             f"/api/v1/missions/{other['id']}/events"]
    async with contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(open_stream(server, p)) for p in paths]
        for stream in streams:
            await stream.next_data()
        hub: live_hub.LiveHub = app.state.live_hub
        assert hub.topics[topic].streams == len(paths)
        assert open_subscriptions[topic] == 1
        await _pledge(client, backer, one["id"], 1_000)
        await settle_all(container)
        seen = [await s.until("pledge.created") for s in streams[:2]]
        # Every stream wrote the same frame, encoded once.
        assert len(hub.topics[topic].frames) >= 1
        assert seen[0] == seen[1]
    async with asyncio.timeout(10):
        while topic in hub.topics or open_subscriptions[topic]:
            await asyncio.sleep(0.02)


async def test_heartbeats_and_a_bounded_lifetime(
    client: httpx.AsyncClient, container: Container, server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(overlay_stream, "HEARTBEAT_SECONDS", 0.1)
    monkeypatch.setattr(overlay_stream, "MAX_STREAM_SECONDS", 0.5)
    _, _, one, _ = await _channel_with_two_missions(client, container)
    async with open_stream(server, f"/api/v1/missions/{one['id']}/events") as stream:
        await stream.next_data()
        beats = 0
        while beats < 2:
            beats += len((await stream.next(timeout=5)).comments)
        await stream.until_closed(timeout=5)


def test_a_stream_that_falls_a_whole_ring_behind_is_told_so() -> None:
    topic = live_hub.Topic("channel:1")
    frames = [live_hub.Frame(b"data: {}\n\n", 1, None) for _ in range(live_hub.RING + 1)]
    topic.publish(frames[:1])
    assert topic.since(0) == frames[:1] and topic.since(1) == []
    topic.publish(frames[1:])
    assert topic.since(0) is None  # its next frame is gone: it ends and resumes
    assert topic.since(1) is not None and len(topic.since(1) or []) == live_hub.RING


def test_public_streams_never_show_the_overlays_own_signals() -> None:
    assert live_hub.encode({"type": overlay_stream.ROTATED}) is None
    pledge = live_hub.encode({"type": "pledge.created", "mission_id": 4, "pledge_id": 9})
    assert pledge is not None and pledge.data.startswith(b"id: p9\n")
    accepted = live_hub.encode({"type": "mission.accepted", "mission_id": 4})
    assert accepted is not None and accepted.data.startswith(b"data: ")


class TestAcrossProcesses:
    """Two ``missionlink serve`` processes sharing Redis (MISSIONLINK_TEST_REDIS_URL)."""

    @pytest.fixture
    def clock(self) -> SystemClock:
        # The API processes stamp events with the real time; the test's worker must agree.
        return SystemClock()

    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"broker_url": redis_e2e.redis_url()}

    async def test_a_pledge_on_one_process_reaches_viewers_on_the_other(
        self, container: Container, tmp_path: Path
    ) -> None:
        streamer = await make_user(container, "streamer")
        creator = await make_user(container)
        backer = await make_user(container, name="다른서버팬")
        with redis_e2e._serve(container, tmp_path) as a, redis_e2e._serve(container, tmp_path) as b:
            await asyncio.gather(redis_e2e._wait_ready(a, tmp_path),
                                 redis_e2e._wait_ready(b, tmp_path))
            async with httpx.AsyncClient(base_url=a, timeout=10) as api_a:
                for who in (creator, backer):
                    r = await api_a.post("/api/v1/wallet/topups", json={"amount": 50_000},
                                         headers=who.headers)
                    assert r.status_code == 201, r.text
                r = await api_a.post("/api/v1/missions", headers=creator.headers, json={
                    "streamer_id": streamer.id, "title": "두 서버 미션", "amount": 10_000,
                    "duration_seconds": 3600})
                assert r.status_code == 201, r.text
                mission = r.json()
                await settle_all(container)
                async with (
                    open_stream(b, f"/api/v1/missions/{mission['id']}/events") as on_mission,
                    open_stream(b, f"/api/v1/channels/{streamer.id}/events") as on_channel,
                ):
                    await on_mission.next_data()
                    await on_channel.next_data()
                    await redis_e2e._wait_subscribed(f"channel:{streamer.id}")
                    r = await api_a.post(f"/api/v1/missions/{mission['id']}/pledges",
                                         json={"amount": 4_000}, headers=backer.headers)
                    assert r.status_code == 201, r.text
                    await settle_all(container)
                    for stream in (on_mission, on_channel):
                        while True:
                            _, event = await stream.until("pledge.created")
                            if event["user_id"] == backer.id:
                                break
                        assert event["amount"] == 4_000 and event["total_pledged"] == 14_000
                        assert event["display_name"] == "다른서버팬"
