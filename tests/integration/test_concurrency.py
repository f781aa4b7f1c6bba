"""Races: many pledges draining one wallet, one idempotency key twice, result vs deadline."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.helpers import assert_ledger_ok, make_user, propose, settle_all, top_up, wallet


async def test_concurrent_pledges_never_overdraw_a_wallet(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    creator, fan = await make_user(container), await make_user(container)
    await top_up(client, creator, 1000)
    await top_up(client, fan, 10_000)
    m = await propose(client, creator, streamer, amount=1000, duration=600, title="hot")

    async def one() -> int:
        r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                              headers=fan.headers)
        return r.status_code

    codes = await asyncio.gather(*(one() for _ in range(25)))
    assert codes.count(201) == 10 and codes.count(409) == 15, codes
    assert (await wallet(client, fan))["cash_balance"] == 0
    assert (await client.get(f"/api/v1/missions/{m['id']}")).json()["total_pledged"] == 11_000
    await assert_ledger_ok(container)


async def test_two_requests_with_one_idempotency_key_take_effect_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    a = await make_user(container)
    h = {**a.headers, "Idempotency-Key": "same"}
    rs = await asyncio.gather(*(client.post("/api/v1/wallet/topups", json={"amount": 7000},
                                            headers=h) for _ in range(6)))
    codes = [r.status_code for r in rs]
    assert set(codes) <= {201, 409} and 201 in codes, codes
    assert len({str(r.json()) for r in rs if r.status_code == 201}) == 1
    assert (await wallet(client, a))["cash_balance"] == 7000
    await assert_ledger_ok(container)


@pytest.mark.parametrize(("after_deadline", "wins"), [
    (-0.001, True),  # before the deadline
    (1.0, True),  # a second late: within the grace period
    ("result_by", False),  # the grace period is over: the mission expires
])
async def test_a_result_racing_the_expiry_has_one_winner(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock,
    after_deadline: float | str, wins: bool,
) -> None:
    from missionlink.services.missions import expire_due

    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 10_000)
    m = await propose(client, a, streamer, amount=10_000, duration=600, title="race")
    await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    grace = container.settings.result_grace_seconds
    clock.advance(600 + (grace if after_deadline == "result_by" else float(after_deadline)))

    async def sweep() -> int:
        async with container.core_db.begin() as conn:
            return await expire_due(conn, clock.now())

    result, swept = await asyncio.gather(
        client.post(f"/api/v1/missions/{m['id']}/result", json={"outcome": "success"},
                    headers=streamer.headers),
        sweep(),
    )
    await settle_all(container)
    final = (await client.get(f"/api/v1/missions/{m['id']}")).json()
    if wins:
        assert result.status_code == 200, result.text
        assert swept == 0
        assert final["status"] == "succeeded" and final["settlement"] == "settled"
        assert (await wallet(client, streamer))["cash_balance"] == 9_000
        assert (await wallet(client, a))["cash_balance"] == 0
    else:
        assert result.status_code == 409, result.text
        assert swept == 1
        assert final["status"] == "expired" and final["settlement"] == "settled"
        assert (await wallet(client, streamer))["cash_balance"] == 0
        assert (await wallet(client, a))["cash_balance"] == 10_000
    await assert_ledger_ok(container)


async def test_pledges_racing_a_rejection_are_all_refunded(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fans = [await make_user(container) for _ in range(5)]
    for f in fans:
        await top_up(client, f, 5_000)
    m = await propose(client, fans[0], streamer, amount=1000, duration=600, title="race")
    pledges = [client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                           headers=f.headers) for f in fans[1:]]
    reject = client.post(f"/api/v1/missions/{m['id']}/reject", headers=streamer.headers)
    await asyncio.gather(*pledges, reject)
    await settle_all(container)
    for f in fans:
        assert (await wallet(client, f))["cash_balance"] == 5_000
    await assert_ledger_ok(container)


async def test_concurrent_pledges_with_one_key_pledge_once_and_replay(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 10_000)
    m = await propose(client, fan, streamer, amount=1000, duration=600, title="k")
    h = {**fan.headers, "Idempotency-Key": "pledge-once"}
    url = f"/api/v1/missions/{m['id']}/pledges"
    rs = await asyncio.gather(*(client.post(url, json={"amount": 2000}, headers=h)
                                for _ in range(8)))
    codes = [r.status_code for r in rs]
    assert set(codes) <= {201, 409} and 201 in codes, codes
    bodies = {str(r.json()) for r in rs if r.status_code == 201}
    assert len(bodies) == 1
    again = await client.post(url, json={"amount": 2000}, headers=h)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert str(again.json()) in bodies
    other = await client.post(url, json={"amount": 3000}, headers=h)
    assert other.status_code == 422
    assert (await wallet(client, fan))["cash_balance"] == 7_000
    assert (await client.get(f"/api/v1/missions/{m['id']}")).json()["total_pledged"] == 3_000
    await assert_ledger_ok(container)
