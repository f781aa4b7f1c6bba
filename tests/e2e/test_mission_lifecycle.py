"""Every path of the mission lifecycle, with balances, journal and emails checked after each."""

from __future__ import annotations

import httpx

from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.fakes import MemoryMailer
from tests.helpers import assert_ledger_ok, make_user, propose, settle_all, top_up, wallet

SIGNUP_POINTS = 1000


async def test_success_pays_streamer_minus_fee_and_pays_winning_bets(
    client: httpx.AsyncClient, container: Container, mailer: MemoryMailer
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    b = await make_user(container, language="en")
    bettor = await make_user(container)
    await top_up(client, a, 50_000)
    await top_up(client, b, 50_000)
    m = await propose(client, a, streamer)
    assert m["status"] == "pending" and m["total_pledged"] == 10_000 and m["settlement"] is None
    assert m["streamer_name"] == streamer.name and m["creator_name"] == a.name
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 5_000},
                          headers=b.headers)
    assert r.status_code == 201, r.text
    assert r.json()["total_pledged"] == 15_000
    for who, side, pts in ((a, "success", 100), (bettor, "failure", 300)):
        r = await client.post(f"/api/v1/missions/{m['id']}/bets",
                              json={"side": side, "points": pts}, headers=who.headers)
        assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    r = await client.post(f"/api/v1/missions/{m['id']}/result", json={"outcome": "success"},
                          headers=streamer.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and r.json()["settlement"] == "pending"
    await settle_all(container)
    got = (await client.get(f"/api/v1/missions/{m['id']}")).json()
    assert got["settlement"] == "settled"
    assert await wallet(client, streamer) == {"cash_balance": 13_500,
                                               "points_balance": SIGNUP_POINTS, "debt": 0}
    # a: 40,000 cash; 1000 - 100 staked + 400 won + 100 earned for pledging 10,000.
    assert await wallet(client, a) == {"cash_balance": 40_000, "points_balance": 1_400, "debt": 0}
    assert await wallet(client, b) == {"cash_balance": 45_000, "points_balance": 1_050, "debt": 0}
    assert await wallet(client, bettor) == {"cash_balance": 0, "points_balance": 700, "debt": 0}
    recipients = sorted(str(msg["To"]) for msg in mailer.sent)
    assert len(recipients) == 3 and all(x for x in recipients)
    assert not mailer.to(bettor.email)
    english = mailer.to(b.email)[0]
    assert "succeeded" in str(english["Subject"]) and "5,000" in english.get_content()
    await assert_ledger_ok(container)


async def test_failure_refunds_every_pledge_and_awards_no_pledge_points(
    client: httpx.AsyncClient, container: Container, mailer: MemoryMailer
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 20_000)
    m = await propose(client, a, streamer)
    await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 3_000},
                      headers=a.headers)
    await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    r = await client.post(f"/api/v1/missions/{m['id']}/result", json={"outcome": "failure"},
                          headers=streamer.headers)
    assert r.json()["status"] == "failed"
    await settle_all(container)
    assert await wallet(client, a) == {"cash_balance": 20_000, "points_balance": SIGNUP_POINTS,
                                       "debt": 0}
    lines = (await client.get("/api/v1/wallet/transactions?limit=100", headers=a.headers)).json()
    refunds = [x for x in lines["items"] if x["kind"] == "refund"]
    assert sorted(x["amount"] for x in refunds) == [3_000, 10_000]
    assert len(mailer.to(a.email)) == 1
    assert "실패" in str(mailer.to(a.email)[0]["Subject"])
    await assert_ledger_ok(container)


async def test_refunds_every_backer_when_streamer_rejects_and_blocks_reproposal(
    client: httpx.AsyncClient, container: Container, mailer: MemoryMailer
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 20_000)
    m = await propose(client, a, streamer)
    r = await client.post(f"/api/v1/missions/{m['id']}/reject", headers=a.headers)
    assert r.status_code == 403
    r = await client.post(f"/api/v1/missions/{m['id']}/reject", headers=streamer.headers)
    assert r.json()["status"] == "rejected"
    await settle_all(container)
    assert await wallet(client, a) == {"cash_balance": 20_000, "points_balance": SIGNUP_POINTS,
                                       "debt": 0}
    r = await client.post("/api/v1/missions", headers=a.headers, json={
        "streamer_id": streamer.id, "title": "again", "amount": 1000, "duration_seconds": 600})
    assert r.status_code == 409
    assert 0 < r.json()["retry_after"] <= 300 and "Retry-After" in r.headers
    assert len(mailer.sent) == 2
    await assert_ledger_ok(container)


async def test_only_the_creator_cancels_and_five_cancels_block_proposing(
    client: httpx.AsyncClient, container: Container
) -> None:
    container.settings.proposal_cooldown_seconds = 0
    streamer = await make_user(container, "streamer")
    a, other = await make_user(container), await make_user(container)
    await top_up(client, a, 100_000)
    for i in range(5):
        m = await propose(client, a, streamer, amount=1_000)
        if i == 0:
            r = await client.post(f"/api/v1/missions/{m['id']}/cancel", headers=other.headers)
            assert r.status_code == 403
        r = await client.post(f"/api/v1/missions/{m['id']}/cancel", headers=a.headers)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await client.post("/api/v1/missions", headers=a.headers, json={
        "streamer_id": streamer.id, "title": "x", "amount": 1000, "duration_seconds": 600})
    assert r.status_code == 409 and r.json()["retry_after"] > 3600
    await settle_all(container)
    assert (await wallet(client, a))["cash_balance"] == 100_000
    await assert_ledger_ok(container)


async def test_pending_mission_expires_after_acceptance_timeout(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    a, b = await make_user(container), await make_user(container)
    await top_up(client, a, 20_000)
    await top_up(client, b, 20_000)
    m = await propose(client, a, streamer, duration=7200)
    clock.advance(3600)  # the default acceptance timeout
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                          headers=b.headers)
    assert r.status_code == 409
    assert (await client.get(f"/api/v1/missions/{m['id']}")).json()["status"] == "expired"
    r = await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    assert r.status_code == 409
    await settle_all(container)
    got = (await client.get(f"/api/v1/missions/{m['id']}")).json()
    assert got["status"] == "expired" and got["settlement"] == "settled"
    assert (await wallet(client, a))["cash_balance"] == 20_000
    assert (await wallet(client, b))["cash_balance"] == 20_000
    await assert_ledger_ok(container)


async def test_accepted_mission_expires_at_result_by_and_result_after_is_refused(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 20_000)
    m = await propose(client, a, streamer, duration=600)
    await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    clock.advance(600 + container.settings.result_grace_seconds)
    assert (await client.get(f"/api/v1/missions/{m['id']}")).json()["status"] == "expired"
    r = await client.post(f"/api/v1/missions/{m['id']}/result", json={"outcome": "success"},
                          headers=streamer.headers)
    assert r.status_code == 409
    assert r.json()["type"].endswith("/deadline-passed")
    await settle_all(container)
    got = (await client.get(f"/api/v1/missions/{m['id']}")).json()
    assert got["status"] == "expired" and got["settlement"] == "settled"
    assert (await wallet(client, a)) == {"cash_balance": 20_000,
                                         "points_balance": SIGNUP_POINTS, "debt": 0}
    await assert_ledger_ok(container)


async def test_terminal_states_are_final(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 20_000)
    m = await propose(client, a, streamer)
    await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    r1 = await client.post(f"/api/v1/missions/{m['id']}/result", json={"outcome": "success"},
                           headers=streamer.headers)
    r2 = await client.post(f"/api/v1/missions/{m['id']}/result", json={"outcome": "failure"},
                           headers=streamer.headers)
    assert r1.status_code == 200 and r2.status_code == 409
    r3 = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                           headers=a.headers)
    assert r3.status_code == 409
    await settle_all(container)
    await assert_ledger_ok(container)


async def test_mission_page_names_the_creator_escaped(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container, name="<b>제안자</b>")
    await top_up(client, a, 10_000)
    m = await propose(client, a, streamer)
    html = (await client.get(f"/missions/{m['id']}")).text
    assert "제안자" in html and "&lt;b&gt;제안자&lt;/b&gt;" in html and "<b>제안자" not in html
