"""Predictions: who may stake, when betting locks, pools, and payouts at settlement."""

from __future__ import annotations

import httpx

from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up, wallet


async def _bet(client: httpx.AsyncClient, who: Actor, mission: int, side: str, points: int,
               key: str | None = None) -> httpx.Response:
    headers = {**who.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post(f"/api/v1/missions/{mission}/bets",
                             json={"side": side, "points": points}, headers=headers)


async def test_stake_rules_one_side_add_to_it_no_streamer_no_overdraw_idempotent(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a, b = await make_user(container), await make_user(container)
    await top_up(client, a, 10_000)
    m = (await propose(client, a, streamer))["id"]
    assert (await _bet(client, b, m, "success", 100)).status_code == 201
    added = await _bet(client, b, m, "success", 50)
    assert added.status_code == 201 and added.json()["points"] == 150
    assert (await _bet(client, b, m, "failure", 10)).status_code == 409
    assert (await _bet(client, streamer, m, "failure", 10)).status_code == 403
    assert (await _bet(client, a, m, "failure", 1001)).status_code == 409
    assert (await _bet(client, a, m, "maybe", 10)).status_code == 422
    assert (await _bet(client, a, m, "failure", 0)).status_code == 422
    first = await _bet(client, a, m, "failure", 200, key="bet-1")
    again = await _bet(client, a, m, "failure", 200, key="bet-1")
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert (await wallet(client, a))["points_balance"] == 800
    assert (await wallet(client, b))["points_balance"] == 850
    await assert_ledger_ok(container)


async def test_prediction_shows_pools_bettors_ratio_and_my_stake(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    b = await make_user(container)
    c = await make_user(container)
    await top_up(client, a, 10_000)
    m = (await propose(client, a, streamer))["id"]
    await _bet(client, a, m, "success", 300)
    await _bet(client, b, m, "success", 100)
    await _bet(client, c, m, "failure", 200)
    mine = (await client.get(f"/api/v1/missions/{m}/prediction", headers=c.headers)).json()
    assert mine["success_pool"] == 400 and mine["failure_pool"] == 200
    assert mine["success_bettors"] == 2 and mine["failure_bettors"] == 1
    assert mine["success_payout_ratio"] == 1.5 and mine["failure_payout_ratio"] == 3.0
    assert mine["my_bet"] == {"side": "failure", "points": 200}
    anonymous = (await client.get(f"/api/v1/missions/{m}/prediction")).json()
    assert anonymous["my_bet"] is None
    assert (await client.get("/api/v1/missions/999999/prediction")).status_code == 404


async def test_betting_locks_after_the_window_following_acceptance(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    a, b = await make_user(container), await make_user(container)
    await top_up(client, a, 10_000)
    m = (await propose(client, a, streamer))["id"]
    await client.post(f"/api/v1/missions/{m}/accept", headers=streamer.headers)
    clock.advance(container.settings.bet_window_seconds - 1)
    assert (await _bet(client, b, m, "success", 10)).status_code == 201
    clock.advance(1)
    assert (await _bet(client, b, m, "success", 10)).status_code == 409


async def test_parimutuel_payout_with_dust_and_losers_get_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a, b, c = await make_user(container), await make_user(container), await make_user(container)
    await top_up(client, a, 10_000)
    m = (await propose(client, a, streamer, amount=1000))["id"]
    await _bet(client, a, m, "failure", 100)
    await _bet(client, b, m, "failure", 200)
    await _bet(client, c, m, "success", 101)
    await client.post(f"/api/v1/missions/{m}/accept", headers=streamer.headers)
    await client.post(f"/api/v1/missions/{m}/result", json={"outcome": "failure"},
                      headers=streamer.headers)
    await settle_all(container)
    # pool 401, winning pool 300: a gets floor(100*401/300)=133, b floor(200*401/300)=267.
    # a's 1,000 KRW pledge came back: no pledge points for a failed mission.
    assert (await wallet(client, a))["points_balance"] == 1000 - 100 + 133
    assert (await wallet(client, b))["points_balance"] == 1000 - 200 + 267
    assert (await wallet(client, c))["points_balance"] == 1000 - 101
    lines = (await client.get("/api/v1/wallet/transactions", headers=a.headers)).json()
    assert "bet_payout" in {x["kind"] for x in lines["items"]}
    await assert_ledger_ok(container)


async def test_every_stake_returns_when_the_mission_is_rejected_or_nobody_won(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a, b = await make_user(container), await make_user(container)
    await top_up(client, a, 10_000)
    rejected = (await propose(client, a, streamer, amount=1000))["id"]
    await _bet(client, b, rejected, "success", 300)
    await client.post(f"/api/v1/missions/{rejected}/reject", headers=streamer.headers)
    container.settings.proposal_cooldown_seconds = 0
    no_winner = (await propose(client, a, streamer, amount=1000))["id"]
    await _bet(client, b, no_winner, "failure", 200)
    await client.post(f"/api/v1/missions/{no_winner}/accept", headers=streamer.headers)
    await client.post(f"/api/v1/missions/{no_winner}/result", json={"outcome": "success"},
                      headers=streamer.headers)
    await settle_all(container)
    assert (await wallet(client, b))["points_balance"] == 1000
    await assert_ledger_ok(container)
