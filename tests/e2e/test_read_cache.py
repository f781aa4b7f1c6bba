"""The public read model: fresh for the writer, shared across replicas, one query per burst
of misses, bounded, honest about the clock, and cacheable at the edge only when anonymous.

The cache's own TTL clock is stopped in these tests (``_freeze_ttl``): a passing result
then comes from invalidation, never from an entry happening to age out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy import event

from missionlink import bootstrap
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.services.read_model import ReadCache
from tests.conftest import redis_test_url
from tests.helpers import make_user, propose, settle_all, top_up


def _freeze_ttl(cache: ReadCache) -> None:
    cache.monotonic = lambda: 0.0


async def _mission(client: httpx.AsyncClient, container: Container) -> tuple[dict[str, Any], Any]:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    await top_up(client, creator, 100_000)
    return await propose(client, creator, streamer), creator


async def _read(client: httpx.AsyncClient, path: str, **kw: Any) -> dict[str, Any]:
    r = await client.get(path, **kw)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_the_writer_reads_its_own_pledge_at_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    _freeze_ttl(container.read_cache)
    mission, backer = await _mission(client, container)
    path = f"/api/v1/missions/{mission['id']}"
    before = await _read(client, path)
    backers_before = await _read(client, path + "/pledges")
    listed_before = await _read(client, "/api/v1/missions")
    r = await client.post(path + "/pledges", json={"amount": 3000}, headers=backer.headers)
    assert r.status_code == 201, r.text
    after = await _read(client, path)
    assert after["total_pledged"] == before["total_pledged"] + 3000
    assert after["pledge_count"] == before["pledge_count"] + 1
    backers_after = await _read(client, path + "/pledges")
    assert len(backers_after["items"]) == len(backers_before["items"]) + 1
    listed = {m["id"]: m for m in (await _read(client, "/api/v1/missions"))["items"]}
    assert listed[mission["id"]]["total_pledged"] == after["total_pledged"]
    assert listed_before != (await _read(client, "/api/v1/missions"))


async def test_a_channel_settings_change_shows_at_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    _freeze_ttl(container.read_cache)
    streamer = await make_user(container, "streamer")
    path = f"/api/v1/streamers/{streamer.id}"
    assert (await _read(client, path))["min_mission_amount"] != 7000
    r = await client.patch("/api/v1/streamers/me/settings", json={"min_mission_amount": 7000},
                           headers=streamer.headers)
    assert r.status_code == 200, r.text
    assert (await _read(client, path))["min_mission_amount"] == 7000
    directory = (await _read(client, "/api/v1/streamers"))["items"]
    assert {s["id"]: s for s in directory}[streamer.id]["min_mission_amount"] == 7000


async def test_settlement_by_the_worker_drops_the_cached_mission(
    client: httpx.AsyncClient, container: Container
) -> None:
    _freeze_ttl(container.read_cache)
    mission, _ = await _mission(client, container)
    path = f"/api/v1/missions/{mission['id']}"
    await settle_all(container)
    assert (await _read(client, path))["settlement"] is None
    # Rejecting ends the mission; the worker then settles it (refunds) and broadcasts.
    token = container.tokens.issue(mission["streamer_id"], "streamer", container.clock.now())
    r = await client.post(path + "/reject", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert (await _read(client, path))["status"] == "rejected"
    await settle_all(container)
    assert (await _read(client, path))["settlement"] is not None


async def test_concurrent_misses_make_one_database_query(
    client: httpx.AsyncClient, container: Container
) -> None:
    mission, _ = await _mission(client, container)
    path = f"/api/v1/missions/{mission['id']}"
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM missions" in statement:
            statements.append(statement)

    engine = container.core_db.reader.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        loads = container.read_cache.loads
        replies = await asyncio.gather(*(client.get(path) for _ in range(20)))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert {r.status_code for r in replies} == {200}
    assert len({r.content for r in replies}) == 1
    assert container.read_cache.loads == loads + 1
    assert len(statements) == 1


async def test_the_cache_never_hides_an_expiry(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    _freeze_ttl(container.read_cache)
    mission, _ = await _mission(client, container)
    path = f"/api/v1/missions/{mission['id']}"
    assert (await _read(client, path))["status"] == "pending"
    listed = (await _read(client, "/api/v1/missions"))["items"]
    assert {m["id"]: m for m in listed}[mission["id"]]["status"] == "pending"
    clock.advance(3601)  # past the deadline, with nothing written
    assert (await _read(client, path))["status"] == "expired"
    listed = (await _read(client, "/api/v1/missions"))["items"]
    assert {m["id"]: m for m in listed}[mission["id"]]["status"] == "expired"


async def test_the_cache_keeps_an_accepted_mission_until_result_by(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """In the grace period for its result an accepted mission still reads ``accepted``; it
    turns ``expired`` at ``result_by``, not at its deadline, with nothing written."""
    _freeze_ttl(container.read_cache)
    streamer, creator = await make_user(container, "streamer"), await make_user(container)
    await top_up(client, creator, 100_000)
    mission = await propose(client, creator, streamer)
    path = f"/api/v1/missions/{mission['id']}"
    assert (await _read(client, path))["status"] == "pending"
    r = await client.post(f"{path}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    assert (await _read(client, path))["status"] == "accepted"
    clock.advance(3600)  # the deadline: the result may still be declared
    assert (await _read(client, path))["status"] == "accepted"
    clock.advance(container.settings.result_grace_seconds - 1)
    assert (await _read(client, path))["status"] == "accepted"
    clock.advance(1)
    assert (await _read(client, path))["status"] == "expired"


async def test_etag_and_not_modified(client: httpx.AsyncClient, container: Container) -> None:
    mission, backer = await _mission(client, container)
    path = f"/api/v1/missions/{mission['id']}"
    first = await client.get(path)
    etag = first.headers["etag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    weak = await client.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    r = await client.post(path + "/pledges", json={"amount": 1000}, headers=backer.headers)
    assert r.status_code == 201, r.text
    changed = await client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["total_pledged"] == first.json()["total_pledged"] + 1000


async def test_edge_caching_only_for_anonymous_readers(
    client: httpx.AsyncClient, container: Container
) -> None:
    mission, backer = await _mission(client, container)
    base = f"/api/v1/missions/{mission['id']}"
    for path in (base, base + "/pledges", base + "/prediction", "/api/v1/missions",
                 f"/api/v1/streamers/{mission['streamer_id']}", "/api/v1/streamers"):
        anonymous = await client.get(path)
        assert anonymous.status_code == 200, (path, anonymous.text)
        assert anonymous.headers["cache-control"].startswith("public, max-age=1"), path
        assert "Authorization" in anonymous.headers["vary"], path
        with_token = await client.get(path, headers=backer.headers)
        assert with_token.headers["cache-control"] == "no-store", path
        with_cookie = await client.get(path, headers={"Cookie": "ml_refresh=abc"})
        assert with_cookie.headers["cache-control"] == "no-store", path


async def test_a_callers_own_bet_never_enters_the_shared_entry(
    client: httpx.AsyncClient, container: Container
) -> None:
    _freeze_ttl(container.read_cache)
    mission, _ = await _mission(client, container)
    await settle_all(container)
    bettor = await make_user(container)
    path = f"/api/v1/missions/{mission['id']}/prediction"
    assert (await _read(client, path))["total_pool"] == 0
    r = await client.post(f"/api/v1/missions/{mission['id']}/bets",
                          json={"side": "success", "points": 100}, headers=bettor.headers)
    assert r.status_code == 201, r.text
    mine = await _read(client, path, headers=bettor.headers)
    assert mine["my_bet"] == {"side": "success", "points": 100}
    anonymous = await _read(client, path)
    assert anonymous["my_bet"] is None and anonymous["total_pool"] == 100


async def test_the_cache_holds_at_most_its_bound(
    client: httpx.AsyncClient, container: Container
) -> None:
    cache = container.read_cache
    _freeze_ttl(cache)
    cache.max_entries = 2
    ids = [(await _mission(client, container))[0]["id"] for _ in range(3)]
    for mission_id in ids:
        await _read(client, f"/api/v1/missions/{mission_id}")
    assert len(cache) == 2
    loads = cache.loads
    await _read(client, f"/api/v1/missions/{ids[2]}")  # most recent: still held
    assert cache.loads == loads
    await _read(client, f"/api/v1/missions/{ids[0]}")  # least recent: was dropped
    assert cache.loads == loads + 1
    assert len(cache) == 2


@contextlib.asynccontextmanager
async def _replica(container: Container, broker_url: str) -> AsyncIterator[
    tuple[Container, httpx.AsyncClient]
]:
    """Another API process on the same databases, joined to the others through Redis."""
    settings = container.settings.model_copy(update={"broker_url": broker_url})
    replica = bootstrap.build(settings, clock=container.clock)
    _freeze_ttl(replica.read_cache)
    transport = httpx.ASGITransport(app=create_app(replica))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield replica, c
    finally:
        await replica.close()


async def test_a_write_on_one_replica_reaches_the_others_cache(
    client: httpx.AsyncClient, container: Container
) -> None:
    url = redis_test_url("the two-replica read cache test")
    mission, backer = await _mission(client, container)
    path = f"/api/v1/missions/{mission['id']}"
    async with _replica(container, url) as (a, api_a), _replica(container, url) as (b, api_b):
        before = await _read(api_b, path)  # cached on b; b starts hearing invalidations
        async with asyncio.timeout(10):
            await b.read_cache.listening.wait()
        r = await api_a.post(path + "/pledges", json={"amount": 2000}, headers=backer.headers)
        assert r.status_code == 201, r.text
        async with asyncio.timeout(5):
            while (await _read(api_b, path))["total_pledged"] == before["total_pledged"]:
                await asyncio.sleep(0.02)
        assert (await _read(api_b, path))["total_pledged"] == before["total_pledged"] + 2000
        assert a.read_cache.origin != b.read_cache.origin
