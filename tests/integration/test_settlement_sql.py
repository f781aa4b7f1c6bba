"""Settlement runs set-based SQL; these tests hold it to the pure rules in ``domain``."""

from __future__ import annotations

import random

import httpx
from sqlalchemy import select

from missionlink.adapters.db.core_tables import email_jobs, transfers
from missionlink.bootstrap import Container
from missionlink.domain.ledger import points_for_pledged
from missionlink.domain.predictions import parimutuel
from missionlink.services.settlement import message_id_for
from tests.helpers import assert_ledger_ok, make_user, propose, settle_all, top_up, wallet


async def test_sql_bet_payouts_and_dust_equal_the_parimutuel_rule(
    client: httpx.AsyncClient, container: Container
) -> None:
    rng = random.Random(20261122)
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    await top_up(client, creator, 100_000)
    for _ in range(4):
        m = (await propose(client, creator, streamer, amount=1000))["id"]
        bettors = [await make_user(container) for _ in range(rng.randint(2, 6))]
        stakes = {b.id: (rng.choice(["success", "failure"]), rng.randint(1, 999))
                  for b in bettors}
        for b in bettors:
            side, points = stakes[b.id]
            r = await client.post(f"/api/v1/missions/{m}/bets",
                                  json={"side": side, "points": points}, headers=b.headers)
            assert r.status_code == 201, r.text
        outcome = rng.choice(["success", "failure"])
        await client.post(f"/api/v1/missions/{m}/accept", headers=streamer.headers)
        await client.post(f"/api/v1/missions/{m}/result", json={"outcome": outcome},
                          headers=streamer.headers)
        await settle_all(container)
        expected = parimutuel(stakes, outcome)
        for b in bettors:
            got = (await wallet(client, b))["points_balance"]
            assert got == 1000 - stakes[b.id][1] + expected.payouts.get(b.id, 0), (stakes, b.id)
        async with container.core_db.read() as conn:
            dust = await conn.scalar(
                select(transfers.c.amount).where(transfers.c.id == f"bet_dust:{m}"))
        assert (dust or 0) == expected.dust
    await assert_ledger_ok(container)


async def test_sql_pledge_points_and_message_ids_equal_the_domain_rules(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a, b = await make_user(container), await make_user(container)
    await top_up(client, a, 50_000)
    await top_up(client, b, 50_000)
    m = (await propose(client, a, streamer, amount=1_999))["id"]
    for amount in (1_099, 1_099):  # per backer: 21 points; per pledge it would be 20
        await client.post(f"/api/v1/missions/{m}/pledges", json={"amount": amount},
                          headers=b.headers)
    await client.post(f"/api/v1/missions/{m}/accept", headers=streamer.headers)
    await client.post(f"/api/v1/missions/{m}/result", json={"outcome": "success"},
                      headers=streamer.headers)
    await settle_all(container)
    assert (await wallet(client, a))["points_balance"] == 1000 + points_for_pledged(1_999)
    assert (await wallet(client, b))["points_balance"] == 1000 + points_for_pledged(2_198)
    async with container.core_db.read() as conn:
        jobs = {(r.user_id, r.message_id) for r in await conn.execute(
            select(email_jobs.c.user_id, email_jobs.c.message_id)
            .where(email_jobs.c.mission_id == m))}
    assert jobs == {(u, message_id_for(m, u)) for u in (a.id, b.id, streamer.id)}
