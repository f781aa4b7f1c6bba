"""Pledge points only when the pledged cash was spent: no farming by pledge-then-fail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.domain.ledger import points_for_pledged
from tests.fakes import MemoryMailer
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up, wallet

SIGNUP_POINTS = 1000
Ending = Callable[[httpx.AsyncClient, FrozenClock, int, Actor, Actor], Awaitable[None]]


async def _fail(client: httpx.AsyncClient, _: FrozenClock, m: int, streamer: Actor,
                __: Actor) -> None:
    await client.post(f"/api/v1/missions/{m}/accept", headers=streamer.headers)
    r = await client.post(f"/api/v1/missions/{m}/result", json={"outcome": "failure"},
                          headers=streamer.headers)
    assert r.json()["status"] == "failed"


async def _reject(client: httpx.AsyncClient, _: FrozenClock, m: int, streamer: Actor,
                  __: Actor) -> None:
    r = await client.post(f"/api/v1/missions/{m}/reject", headers=streamer.headers)
    assert r.json()["status"] == "rejected"


async def _cancel(client: httpx.AsyncClient, _: FrozenClock, m: int, __: Actor,
                  creator: Actor) -> None:
    r = await client.post(f"/api/v1/missions/{m}/cancel", headers=creator.headers)
    assert r.json()["status"] == "cancelled"


async def _expire(client: httpx.AsyncClient, clock: FrozenClock, m: int, streamer: Actor,
                  __: Actor) -> None:
    await client.post(f"/api/v1/missions/{m}/accept", headers=streamer.headers)
    clock.advance(7 * 24 * 3600)
    r = await client.get(f"/api/v1/missions/{m}")
    assert r.json()["status"] == "expired"


@pytest.mark.parametrize("end", [_fail, _reject, _cancel, _expire],
                         ids=["failed", "rejected", "cancelled", "expired"])
async def test_colluding_backer_earns_no_points_when_the_cash_comes_back(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, mailer: MemoryMailer,
    end: Ending,
) -> None:
    streamer = await make_user(container, "streamer")
    creator, backer = await make_user(container), await make_user(container)
    await top_up(client, creator, 20_000)
    await top_up(client, backer, 500_000)
    m = (await propose(client, creator, streamer, amount=1_000))["id"]
    r = await client.post(f"/api/v1/missions/{m}/pledges", json={"amount": 400_000},
                          headers=backer.headers)
    assert r.status_code == 201, r.text
    await end(client, clock, m, streamer, creator)
    await settle_all(container)
    assert await wallet(client, backer) == {"cash_balance": 500_000,
                                            "points_balance": SIGNUP_POINTS, "debt": 0}
    assert await wallet(client, creator) == {"cash_balance": 20_000,
                                             "points_balance": SIGNUP_POINTS, "debt": 0}
    lines = (await client.get("/api/v1/wallet/transactions?limit=100",
                              headers=backer.headers)).json()["items"]
    assert "pledge_points" not in {x["kind"] for x in lines}
    await assert_ledger_ok(container)


async def test_success_awards_points_for_the_spent_pledges(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    backer = await make_user(container)
    await top_up(client, backer, 50_000)
    m = (await propose(client, backer, streamer, amount=12_345))["id"]
    await client.post(f"/api/v1/missions/{m}/accept", headers=streamer.headers)
    await client.post(f"/api/v1/missions/{m}/result", json={"outcome": "success"},
                      headers=streamer.headers)
    await settle_all(container)
    assert (await wallet(client, backer))["points_balance"] == (
        SIGNUP_POINTS + points_for_pledged(12_345))
    await assert_ledger_ok(container)
