"""The result grace period: an accepted mission's result may still be declared until
``result_by`` (the deadline plus ``RESULT_GRACE_SECONDS``); pledges and bets close at the
deadline; the worker expires it only from ``result_by``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from missionlink.adapters.db.core_tables import missions
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.workers.runner import Worker
from tests.helpers import (
    Actor,
    assert_ledger_ok,
    make_user,
    propose,
    settle_all,
    top_up,
    wallet,
)

API = "/api/v1"
DURATION = 600


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _accepted(
    client: httpx.AsyncClient, container: Container
) -> tuple[Actor, Actor, Actor, dict[str, Any]]:
    streamer = await make_user(container, "streamer")
    creator, fan = await make_user(container), await make_user(container)
    await top_up(client, creator, 20_000)
    await top_up(client, fan, 20_000)
    m = await propose(client, creator, streamer, amount=10_000, duration=DURATION)
    r = await client.post(f"{API}/missions/{m['id']}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    return streamer, creator, fan, r.json()


async def _mission(client: httpx.AsyncClient, mission_id: int) -> dict[str, Any]:
    r = await client.get(f"{API}/missions/{mission_id}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def _code(r: httpx.Response) -> str:
    return str(r.json()["type"]).rsplit("/", 1)[-1]


async def test_every_mission_shows_result_by_fixed_at_creation(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    await top_up(client, creator, 20_000)
    created = await propose(client, creator, streamer, duration=DURATION)
    grace = timedelta(seconds=container.settings.result_grace_seconds)
    assert grace == timedelta(seconds=600)
    assert _at(created["result_by"]) == _at(created["deadline_at"]) + grace
    assert (await _mission(client, created["id"]))["result_by"] == created["result_by"]
    listed = (await client.get(f"{API}/missions")).json()["items"]
    assert {m["id"]: m for m in listed}[created["id"]]["result_by"] == created["result_by"]
    r = await client.post(f"{API}/missions/{created['id']}/reject", headers=streamer.headers)
    assert r.json()["result_by"] == created["result_by"]


@pytest.mark.parametrize(("outcome", "status"), [("success", "succeeded"),
                                                 ("failure", "failed")])
async def test_a_result_a_second_after_the_deadline_is_accepted_and_settled(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock,
    outcome: str, status: str,
) -> None:
    streamer, creator, _, m = await _accepted(client, container)
    clock.advance(DURATION + 1)
    assert (await _mission(client, m["id"]))["status"] == "accepted"
    await settle_all(container)  # the worker leaves it alone: its result may still come
    assert (await _mission(client, m["id"]))["status"] == "accepted"
    r = await client.post(f"{API}/missions/{m['id']}/result", json={"outcome": outcome},
                          headers=streamer.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == status
    await settle_all(container)
    final = await _mission(client, m["id"])
    assert final["status"] == status and final["settlement"] == "settled"
    if outcome == "success":
        assert (await wallet(client, streamer))["cash_balance"] == 9_000
        assert (await wallet(client, creator))["cash_balance"] == 10_000
    else:
        assert (await wallet(client, streamer))["cash_balance"] == 0
        assert (await wallet(client, creator))["cash_balance"] == 20_000
    await assert_ledger_ok(container)


async def test_pledges_and_bets_are_refused_in_the_grace_period(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    _, _, fan, m = await _accepted(client, container)
    clock.advance(DURATION)
    r = await client.post(f"{API}/missions/{m['id']}/pledges", json={"amount": 1000},
                          headers=fan.headers)
    assert r.status_code == 409 and _code(r) == "deadline-passed", r.text
    r = await client.post(f"{API}/missions/{m['id']}/bets",
                          json={"side": "success", "points": 10}, headers=fan.headers)
    assert r.status_code == 409 and _code(r) == "deadline-passed", r.text
    assert (await wallet(client, fan))["cash_balance"] == 20_000
    got = await _mission(client, m["id"])
    assert got["status"] == "accepted" and got["total_pledged"] == 10_000


async def test_the_worker_expires_only_from_result_by(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer, creator, _, m = await _accepted(client, container)
    await settle_all(container)
    clock.advance(DURATION + container.settings.result_grace_seconds - 0.000001)
    assert await Worker(container).run_once() == 0  # nothing expired, nothing to settle
    accepted = (await client.get(f"{API}/missions", params={"status": "accepted"})).json()
    assert [x["id"] for x in accepted["items"]] == [m["id"]]
    expired = (await client.get(f"{API}/missions", params={"status": "expired"})).json()
    assert expired["items"] == []
    clock.advance(0.000001)
    assert (await _mission(client, m["id"]))["status"] == "expired"
    expired = (await client.get(f"{API}/missions", params={"status": "expired"})).json()
    assert [x["id"] for x in expired["items"]] == [m["id"]]
    r = await client.post(f"{API}/missions/{m['id']}/result", json={"outcome": "success"},
                          headers=streamer.headers)
    assert r.status_code == 409 and _code(r) == "deadline-passed", r.text
    await settle_all(container)
    final = await _mission(client, m["id"])
    assert final["status"] == "expired" and final["settlement"] == "settled"
    assert (await wallet(client, creator))["cash_balance"] == 20_000
    assert (await wallet(client, streamer))["cash_balance"] == 0
    await assert_ledger_ok(container)


async def test_a_pending_mission_gets_no_grace_period(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    await top_up(client, creator, 20_000)
    m = await propose(client, creator, streamer, duration=DURATION)
    clock.advance(DURATION)
    assert (await _mission(client, m["id"]))["status"] == "expired"
    r = await client.post(f"{API}/missions/{m['id']}/accept", headers=streamer.headers)
    assert r.status_code == 409 and _code(r) == "deadline-passed", r.text
    await settle_all(container)
    assert (await _mission(client, m["id"]))["settlement"] == "settled"
    await assert_ledger_ok(container)


async def test_a_mission_without_result_by_has_no_grace_period(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """NULL in the table (a mission from before the column, or a seeded row) reads as the
    deadline."""
    streamer, creator, _, m = await _accepted(client, container)
    async with container.core_db.begin() as conn:
        await conn.execute(update(missions).where(missions.c.id == m["id"])
                           .values(result_by=None))
    got = await _mission(client, m["id"])
    assert got["result_by"] == got["deadline_at"]
    clock.advance(DURATION)
    assert (await _mission(client, m["id"]))["status"] == "expired"
    r = await client.post(f"{API}/missions/{m['id']}/result", json={"outcome": "success"},
                          headers=streamer.headers)
    assert r.status_code == 409 and _code(r) == "deadline-passed", r.text
    await settle_all(container)
    assert (await _mission(client, m["id"]))["settlement"] == "settled"
    assert (await wallet(client, creator))["cash_balance"] == 20_000
    await assert_ledger_ok(container)


class TestTurnedOff:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"result_grace_seconds": 0}

    async def test_the_result_closes_at_the_deadline(
        self, client: httpx.AsyncClient, container: Container, clock: FrozenClock
    ) -> None:
        streamer, creator, _, m = await _accepted(client, container)
        assert m["result_by"] == m["deadline_at"]
        clock.advance(DURATION)
        assert (await _mission(client, m["id"]))["status"] == "expired"
        r = await client.post(f"{API}/missions/{m['id']}/result", json={"outcome": "success"},
                              headers=streamer.headers)
        assert r.status_code == 409 and _code(r) == "deadline-passed", r.text
        await settle_all(container)
        assert (await wallet(client, creator))["cash_balance"] == 20_000
        await assert_ledger_ok(container)
