"""The overlay's server-sent events over a real socket: snapshot, live pledges, resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from missionlink.api import overlay_stream
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.sse import live_server, open_stream
from tests.helpers import Actor, make_user, settle_all, top_up


@pytest.fixture
async def server(container: Container) -> AsyncIterator[str]:
    async with live_server(create_app(container)) as url:
        yield url


async def _events_path(client: httpx.AsyncClient, streamer: Actor) -> str:
    r = await client.get("/api/v1/streamers/me/overlay", headers=streamer.headers)
    token = r.json()["url"].rsplit("/", 1)[1]
    return f"/api/v1/overlay/{token}/events"


async def _mission(client: httpx.AsyncClient, creator: Actor, streamer: Actor,
                   title: str = "라면 먹방", amount: int = 10_000) -> dict[str, Any]:
    r = await client.post("/api/v1/missions", headers=creator.headers, json={
        "streamer_id": streamer.id, "title": title, "amount": amount,
        "duration_seconds": 3600})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _pledge(client: httpx.AsyncClient, who: Actor, mission_id: int, amount: int) -> None:
    r = await client.post(f"/api/v1/missions/{mission_id}/pledges", json={"amount": amount},
                          headers=who.headers)
    assert r.status_code == 201, r.text


async def test_stream_sends_a_snapshot_then_each_pledge_with_the_backers_name(
    client: httpx.AsyncClient, container: Container, server: str
) -> None:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    backer = await make_user(container, name="열혈팬")
    await top_up(client, creator, 50_000)
    await top_up(client, backer, 50_000)
    mission = await _mission(client, creator, streamer)
    await settle_all(container)
    async with open_stream(server, await _events_path(client, streamer)) as stream:
        first = await stream.next()
        assert first.retry is not None
        event_id, snap = await stream.next_data()
        assert snap["type"] == "snapshot" and event_id is not None
        assert [m["id"] for m in snap["missions"]] == [mission["id"]]
        assert snap["missions"][0]["total_pledged"] == 10_000
        assert snap["missions"][0]["title"] == "라면 먹방"
        # Pending: it closes at the acceptance timeout, and that is what the countdown shows.
        assert snap["missions"][0]["ends_at"] == mission["accept_by"]
        await _pledge(client, backer, mission["id"], 5_000)
        await settle_all(container)
        event_id, pledge = await stream.until("pledge.created")
    assert pledge["mission_id"] == mission["id"]
    assert pledge["amount"] == 5_000 and type(pledge["amount"]) is int
    assert pledge["total_pledged"] == 15_000
    assert pledge["display_name"] == "열혈팬" and pledge["title"] == "라면 먹방"
    assert event_id == f"p{pledge['pledge_id']}"
    me = (await client.get(f"/api/v1/streamers/{streamer.id}")).json()
    assert me["live"] is True


async def test_mission_events_carry_the_card_the_overlay_shows(
    client: httpx.AsyncClient, container: Container, server: str
) -> None:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container, name="제안자")
    await top_up(client, creator, 50_000)
    async with open_stream(server, await _events_path(client, streamer)) as stream:
        _, snap = await stream.next_data()
        assert snap["missions"] == []
        mission = await _mission(client, creator, streamer, "<b>매운맛</b>", 7_000)
        await settle_all(container)
        _, created = await stream.until("mission.created")
        assert created["mission_id"] == mission["id"]
        assert created["mission"]["status"] == "pending"
        assert created["mission"]["title"] == "<b>매운맛</b>"
        assert created["mission"]["total_pledged"] == 7_000
        _, first_pledge = await stream.until("pledge.created")
        assert first_pledge["display_name"] == "제안자"
        await client.post(f"/api/v1/missions/{mission['id']}/accept", headers=streamer.headers)
        await settle_all(container)
        _, accepted = await stream.until("mission.accepted")
        assert accepted["mission"]["status"] == "accepted"
        await client.post(f"/api/v1/missions/{mission['id']}/result",
                          json={"outcome": "success"}, headers=streamer.headers)
        await settle_all(container)
        _, ended = await stream.until("mission.ended")
        assert ended["status"] == "succeeded" and ended["mission"]["status"] == "succeeded"
        _, settled = await stream.until("mission.settled")
        assert settled["mission_id"] == mission["id"]


async def test_heartbeats_keep_the_stream_alive_and_the_streamer_live(
    client: httpx.AsyncClient, container: Container, server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(overlay_stream, "HEARTBEAT_SECONDS", 0.2)
    streamer = await make_user(container, "streamer")
    assert (await client.get(f"/api/v1/streamers/{streamer.id}")).json()["live"] is False
    async with open_stream(server, await _events_path(client, streamer)) as stream:
        await stream.next_data()
        beats = 0
        while beats < 2:
            event = await stream.next(timeout=5)
            beats += len(event.comments)
        assert (await client.get(f"/api/v1/streamers/{streamer.id}")).json()["live"] is True
    assert overlay_stream.HEARTBEAT_SECONDS <= 15


async def test_reconnect_with_last_event_id_gets_a_fresh_snapshot_and_missed_pledges(
    client: httpx.AsyncClient, container: Container, server: str
) -> None:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    backer = await make_user(container, name="돌아온팬")
    await top_up(client, creator, 50_000)
    await top_up(client, backer, 50_000)
    mission = await _mission(client, creator, streamer)
    await settle_all(container)
    path = await _events_path(client, streamer)
    async with open_stream(server, path) as stream:
        last_id, _ = await stream.next_data()
    await _pledge(client, backer, mission["id"], 2_000)
    await _pledge(client, backer, mission["id"], 3_000)
    async with open_stream(server, path, {"Last-Event-ID": str(last_id)}) as stream:
        _, snap = await stream.next_data()
        assert snap["type"] == "snapshot"
        assert snap["missions"][0]["total_pledged"] == 15_000
        missed = [await stream.next_data() for _ in range(2)]
        assert [d["amount"] for _, d in missed] == [2_000, 3_000]
        assert [d["total_pledged"] for _, d in missed] == [12_000, 15_000]
        assert all(d["display_name"] == "돌아온팬" for _, d in missed)
        # The live copies of the replayed pledges are not shown twice.
        await _pledge(client, backer, mission["id"], 4_000)
        await settle_all(container)
        _, live = await stream.until("pledge.created")
        assert live["amount"] == 4_000
    async with open_stream(server, path, {"Last-Event-ID": "garbage"}) as stream:
        _, snap = await stream.next_data()
        assert snap["type"] == "snapshot"


async def test_rotating_the_token_ends_open_streams(
    client: httpx.AsyncClient, container: Container, server: str
) -> None:
    streamer = await make_user(container, "streamer")
    async with open_stream(server, await _events_path(client, streamer)) as stream:
        await stream.next_data()
        r = await client.post("/api/v1/streamers/me/overlay/rotate", headers=streamer.headers)
        assert r.status_code == 200
        await stream.until_closed(timeout=5)


async def test_streams_end_after_their_lifetime_and_resume_where_they_left_off(
    client: httpx.AsyncClient, container: Container, server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(overlay_stream, "MAX_STREAM_SECONDS", 0.3)
    monkeypatch.setattr(overlay_stream, "HEARTBEAT_SECONDS", 0.1)
    streamer = await make_user(container, "streamer")
    path = await _events_path(client, streamer)
    async with open_stream(server, path) as stream:
        first = await stream.next()
        assert first.retry == overlay_stream.RETRY_MILLISECONDS
        last_id, _ = await stream.next_data()
        await stream.until_closed(timeout=5)
    async with open_stream(server, path, {"Last-Event-ID": str(last_id)}) as stream:
        _, snap = await stream.next_data()
        assert snap["type"] == "snapshot"
