"""Races (F7), in-process on SQLite and PostgreSQL: one Idempotency-Key sent twice at once
on every kind of effect, many pledges and proposals emptying one wallet across missions,
a result against ``result_by`` (the deadline plus the grace period) or an acceptance
against the deadline in both orders with the expiry sweep, and
cancel against accept (and reject) at once.

``tests/integration/test_concurrency.py`` already covers top-ups and pledges with one key,
one mission drained by equal pledges, a result just before the deadline and pledges
against a rejection; these extend it where it does not reach. After each race the worker
runs until idle, the ledger reconciles and every ended mission settled exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from missionlink.adapters.db.core_tables import bets, missions, outbox, pledges, transfers
from missionlink.bootstrap import Container
from missionlink.domain import events as topics
from missionlink.domain import ledger as L
from missionlink.domain.clock import FrozenClock
from missionlink.services import reconcile
from missionlink.workers.runner import Worker
from tests.helpers import Actor, make_user, propose, settle_all, top_up, wallet

API = "/api/v1"


def _code(r: httpx.Response) -> str:
    return str(r.json().get("type", "")).rsplit("/", 1)[-1]


async def _settled_once(container: Container) -> None:
    """The ledger reconciles; every ended mission settled exactly once, with one refund per
    pledge or one payout, never both, and one ``mission.settled`` event."""
    async with container.core_db.read() as conn:
        report = await reconcile.check(conn)
        assert report.ok, report.render()
        rows = list(await conn.execute(select(missions)))
        kinds = list(await conn.execute(
            select(transfers.c.mission_id, transfers.c.kind, func.count())
            .where(transfers.c.mission_id.is_not(None))
            .group_by(transfers.c.mission_id, transfers.c.kind)))
        per_mission = dict((await conn.execute(
            select(pledges.c.mission_id, func.count()).group_by(pledges.c.mission_id))).all())
        settled_events = [dict(p) for (p,) in await conn.execute(
            select(outbox.c.payload).where(outbox.c.topic == topics.MISSION_SETTLED))]
        ended_events = [dict(p) for (p,) in await conn.execute(
            select(outbox.c.payload).where(outbox.c.topic == topics.MISSION_ENDED))]
    counts: dict[tuple[int, str], int] = {(m, k): n for m, k, n in kinds}
    for m in rows:
        n_settled = sum(1 for p in settled_events if p["mission_id"] == m.id)
        n_ended = sum(1 for p in ended_events if p["mission_id"] == m.id)
        if m.status in {"pending", "accepted"}:
            assert m.settlement is None and n_settled == 0 and n_ended == 0, m
            continue
        assert m.settlement == "settled", (m.id, m.status, m.settlement)
        assert n_settled == 1 and n_ended == 1, (m.id, n_settled, n_ended)
        refunds = counts.get((m.id, L.TransferKind.refund.value), 0)
        payouts = counts.get((m.id, L.TransferKind.payout.value), 0)
        if m.status == "succeeded":
            assert refunds == 0 and payouts == 1, (m.id, refunds, payouts)
        else:
            assert payouts == 0 and refunds == per_mission.get(m.id, 0), (m.id, refunds)


async def _finish(container: Container) -> None:
    await settle_all(container)
    await _settled_once(container)


async def _status(client: httpx.AsyncClient, mission_id: int) -> dict[str, Any]:
    r = await client.get(f"{API}/missions/{mission_id}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def _pair(container: Container) -> tuple[Actor, Actor]:
    return await make_user(container, "streamer"), await make_user(container)


# -- one Idempotency-Key sent twice at once -------------------------------------------

Op = Callable[[httpx.AsyncClient, Container, dict[str, str]], Awaitable[httpx.Response]]


async def _same_key_race(
    client: httpx.AsyncClient, send: Callable[[dict[str, str]], Awaitable[httpx.Response]],
    actor: Actor, copies: int,
) -> tuple[int, Any]:
    """Send one request ``copies`` times at once with one key: every answer is the first
    one's (or 409 idempotency-in-progress, and then a retry replays it)."""
    headers = {**actor.headers, "Idempotency-Key": f"race-{uuid.uuid4().hex}"}
    answers = await asyncio.gather(*(send(headers) for _ in range(copies)))
    ok = [r for r in answers if r.status_code < 300]
    busy = [r for r in answers if r.status_code == 409]
    assert len(ok) + len(busy) == copies, [(r.status_code, r.text) for r in answers]
    assert all(_code(r) == "idempotency-in-progress" for r in busy), [r.text for r in busy]
    assert ok, "every copy was refused as in progress"
    assert len({r.status_code for r in ok}) == 1
    assert len({r.content for r in ok}) == 1, [r.text for r in ok]
    replayed = [r.headers.get("Idempotent-Replayed") == "true" for r in ok]
    assert replayed.count(False) == 1, replayed
    for _ in busy:
        again = await send(headers)
        assert again.status_code == ok[0].status_code, again.text
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.content == ok[0].content
    return ok[0].status_code, ok[0].json()


async def test_one_key_twice_at_once_proposes_one_mission(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer, viewer = await _pair(container)
    await top_up(client, viewer, 10_000)

    async def send(h: dict[str, str]) -> httpx.Response:
        return await client.post(f"{API}/missions", headers=h, json={
            "streamer_id": streamer.id, "title": "race", "description": "",
            "amount": 3000, "duration_seconds": 600})

    status, body = await _same_key_race(client, send, viewer, 2)
    assert status == 201
    async with container.core_db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(missions)) == 1
        assert await conn.scalar(select(func.count()).select_from(pledges)) == 1
    assert (await wallet(client, viewer))["cash_balance"] == 7000
    assert body["total_pledged"] == 3000
    await _finish(container)


@pytest.mark.parametrize("action", ["accept", "reject", "cancel", "success", "failure"])
async def test_one_key_twice_at_once_moves_a_mission_once(
    client: httpx.AsyncClient, container: Container, action: str
) -> None:
    streamer, viewer = await _pair(container)
    await top_up(client, viewer, 10_000)
    m = await propose(client, viewer, streamer, amount=4000, duration=600)
    url = f"{API}/missions/{m['id']}"
    actor, path, body = {
        "accept": (streamer, "/accept", None), "reject": (streamer, "/reject", None),
        "cancel": (viewer, "/cancel", None),
        "success": (streamer, "/result", {"outcome": "success"}),
        "failure": (streamer, "/result", {"outcome": "failure"}),
    }[action]
    if action in {"success", "failure"}:
        r = await client.post(f"{url}/accept", headers=streamer.headers)
        assert r.status_code == 200, r.text

    async def send(h: dict[str, str]) -> httpx.Response:
        return await client.post(url + path, headers=h, json=body)

    status, answer = await _same_key_race(client, send, actor, 3)
    assert status == 200
    expected = {"accept": "accepted", "reject": "rejected", "cancel": "cancelled",
                "success": "succeeded", "failure": "failed"}[action]
    assert answer["status"] == expected
    await _finish(container)
    cash = (await wallet(client, viewer))["cash_balance"], (await wallet(client, streamer))[
        "cash_balance"]
    assert cash == ((6000, 3600) if action == "success" else (10_000 if action != "accept"
                                                              else 6000, 0))


async def test_one_key_twice_at_once_bets_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer, viewer = await _pair(container)
    bettor = await make_user(container)
    await top_up(client, viewer, 10_000)
    m = await propose(client, viewer, streamer, amount=2000, duration=600)
    points = (await wallet(client, bettor))["points_balance"]

    async def send(h: dict[str, str]) -> httpx.Response:
        return await client.post(f"{API}/missions/{m['id']}/bets", headers=h,
                                 json={"side": "success", "points": 300})

    status, answer = await _same_key_race(client, send, bettor, 4)
    assert status == 201 and answer["points"] == 300
    assert (await wallet(client, bettor))["points_balance"] == points - 300
    async with container.core_db.read() as conn:
        assert await conn.scalar(select(func.sum(bets.c.points))) == 300
    await _finish(container)


# -- many pledges at once emptying one wallet -------------------------------------------

async def test_pledges_and_proposals_across_missions_empty_one_wallet_exactly(
    client: httpx.AsyncClient, container: Container
) -> None:
    """One wallet, 30 pledges of one amount at once over five missions and five proposals:
    exactly as many as the balance allows are taken, the rest refused insufficient-funds."""
    streamers = [await make_user(container, "streamer") for _ in range(6)]
    creator, fan = await make_user(container), await make_user(container)
    await top_up(client, creator, 10_000)
    ms = [await propose(client, creator, s, amount=1000, duration=600) for s in streamers[:5]]
    await top_up(client, fan, 12_500)
    amount = 1500
    sends = [client.post(f"{API}/missions/{ms[i % 5]['id']}/pledges", json={"amount": amount},
                         headers=fan.headers) for i in range(30)]
    sends += [client.post(f"{API}/missions", headers=fan.headers, json={
        "streamer_id": streamers[5].id, "title": f"p{i}", "description": "",
        "amount": amount, "duration_seconds": 600}) for i in range(5)]
    rs = await asyncio.gather(*sends)
    taken = [r for r in rs if r.status_code == 201]
    refused = [r for r in rs if r.status_code != 201]
    assert len(taken) == 12_500 // amount, [(r.status_code, r.text) for r in rs]
    assert all(r.status_code == 409 and _code(r) == "insufficient-funds" for r in refused), [
        r.text for r in refused]
    assert (await wallet(client, fan))["cash_balance"] == 12_500 % amount
    pledged = sum(m_["total_pledged"] for m_ in
                  [await _status(client, m_["id"]) for m_ in ms]) - 5 * 1000
    proposed = sum(1 for r in taken if "streamer_id" in r.json() and "title" in r.json())
    assert pledged + proposed * amount == len(taken) * amount
    await _finish(container)


async def test_pledges_of_mixed_amounts_never_overdraw_and_refusals_are_real(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Pledges of different amounts at once: the wallet never goes negative, each refused
    pledge was larger than what was left, and when the missions fail every won comes back."""
    streamers = [await make_user(container, "streamer") for _ in range(3)]
    creator, fan = await make_user(container), await make_user(container)
    await top_up(client, creator, 10_000)
    ms = [await propose(client, creator, s, amount=1000, duration=600) for s in streamers]
    for m in ms:
        r = await client.post(f"{API}/missions/{m['id']}/accept",
                              headers=streamers[ms.index(m)].headers)
        assert r.status_code == 200
    balance = 20_000
    await top_up(client, fan, balance)
    amounts = [1000 + 700 * (i % 7) for i in range(40)]
    rs = await asyncio.gather(*(
        client.post(f"{API}/missions/{ms[i % 3]['id']}/pledges", json={"amount": a},
                    headers=fan.headers) for i, a in enumerate(amounts)))
    spent = sum(a for a, r in zip(amounts, rs, strict=True) if r.status_code == 201)
    left = (await wallet(client, fan))["cash_balance"]
    assert left == balance - spent >= 0
    refused = [a for a, r in zip(amounts, rs, strict=True) if r.status_code != 201]
    assert refused, "the wallet was never emptied"
    assert all(r.status_code == 409 and _code(r) == "insufficient-funds"
               for r in rs if r.status_code != 201)
    assert all(a > left for a in refused), (left, refused)
    for i, m in enumerate(ms):
        r = await client.post(f"{API}/missions/{m['id']}/result", json={"outcome": "failure"},
                              headers=streamers[i].headers)
        assert r.status_code == 200
    await _finish(container)
    assert (await wallet(client, fan))["cash_balance"] == balance
    assert (await wallet(client, creator))["cash_balance"] == 10_000


async def test_pledges_and_bets_at_once_keep_cash_and_points_apart(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer, fan = await _pair(container)
    await top_up(client, fan, 5000)
    m = await propose(client, fan, streamer, amount=1000, duration=600)
    points = (await wallet(client, fan))["points_balance"]
    url = f"{API}/missions/{m['id']}"
    rs = await asyncio.gather(
        *(client.post(f"{url}/pledges", json={"amount": 1000}, headers=fan.headers)
          for _ in range(8)),
        *(client.post(f"{url}/bets", json={"side": "failure", "points": 150},
                      headers=fan.headers) for _ in range(10)))
    pledged = sum(1 for r in rs[:8] if r.status_code == 201)
    betted = sum(1 for r in rs[8:] if r.status_code == 201)
    assert pledged == 4 and betted == points // 150, [r.text for r in rs]
    assert all(_code(r) == "insufficient-funds" for r in rs if r.status_code != 201)
    w = await wallet(client, fan)
    assert w == {"cash_balance": 0, "points_balance": points - 150 * betted,
                 "debt": 0}
    await _finish(container)


async def test_first_bets_of_one_user_at_once_add_up(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Ten first bets of one user on one mission at once: each adds to the one bet (on
    PostgreSQL they all found no bet and nine broke the unique key with a 500)."""
    streamer, viewer = await _pair(container)
    bettor = await make_user(container)
    await top_up(client, viewer, 2000)
    m = await propose(client, viewer, streamer, amount=2000, duration=600)
    points = (await wallet(client, bettor))["points_balance"]
    rs = await asyncio.gather(*(
        client.post(f"{API}/missions/{m['id']}/bets", headers=bettor.headers,
                    json={"side": "success", "points": 40}) for _ in range(10)))
    assert [r.status_code for r in rs] == [201] * 10, [r.text for r in rs]
    assert sorted(r.json()["points"] for r in rs) == list(range(40, 401, 40))
    assert (await wallet(client, bettor))["points_balance"] == points - 400
    both = await asyncio.gather(*(
        client.post(f"{API}/missions/{m['id']}/bets", headers=viewer.headers,
                    json={"side": side, "points": 10}) for side in ["success", "failure"] * 4))
    sides = {r.json()["side"] for r in both if r.status_code == 201}
    assert len(sides) == 1, [r.text for r in both]
    assert all(r.status_code == 409 and _code(r) == "conflict"
               for r in both if r.status_code != 201), [r.text for r in both]
    r = await client.post(f"{API}/missions/{m['id']}/reject", headers=streamer.headers)
    assert r.status_code == 200
    await _finish(container)
    assert (await wallet(client, bettor))["points_balance"] == points


# -- a result, or an acceptance, against the deadline -------------------------------------

async def _accepted_mission(client: httpx.AsyncClient, container: Container,
                            ) -> tuple[Actor, Actor, dict[str, Any]]:
    streamer, viewer = await _pair(container)
    await top_up(client, viewer, 10_000)
    m = await propose(client, viewer, streamer, amount=10_000, duration=600)
    r = await client.post(f"{API}/missions/{m['id']}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    return streamer, viewer, m


async def _sweep(container: Container) -> int:
    done = 0
    worker = Worker(container)
    async with container.core_db.begin() as conn:
        from missionlink.services.missions import expire_due
        done += await expire_due(conn, container.clock.now())
    await worker.run_until_idle()
    return done


@pytest.mark.parametrize("offset", [0.0, 0.000001])
@pytest.mark.parametrize("order", ["result-first", "worker-first", "together"])
async def test_a_result_at_or_past_result_by_loses_to_the_expiry(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock,
    offset: float, order: str,
) -> None:
    """At ``result_by`` (the deadline plus the grace period) and after it the mission has
    expired: the result is refused whichever runs first, the backer is refunded once."""
    streamer, viewer, m = await _accepted_mission(client, container)
    grace = container.settings.result_grace_seconds
    assert grace > 0
    clock.advance(600 + grace + offset)

    async def declare() -> httpx.Response:
        return await client.post(f"{API}/missions/{m['id']}/result",
                                 json={"outcome": "success"}, headers=streamer.headers)

    if order == "result-first":
        r = await declare()
        swept = await _sweep(container)
    elif order == "worker-first":
        swept = await _sweep(container)
        r = await declare()
    else:
        r, swept = await asyncio.gather(declare(), _sweep(container))
    assert r.status_code == 409, r.text
    assert _code(r) in {"deadline-passed", "invalid-state"}, r.text
    if order == "result-first":
        assert _code(r) == "deadline-passed"
    assert swept == 1
    await _finish(container)
    final = await _status(client, m["id"])
    assert final["status"] == "expired" and final["settlement"] == "settled"
    assert (await wallet(client, viewer))["cash_balance"] == 10_000
    assert (await wallet(client, streamer))["cash_balance"] == 0


@pytest.mark.parametrize("after_deadline", [-0.000001, 0.0, 1.0, "result_by-1us"])
@pytest.mark.parametrize("order", ["result-first", "worker-first", "together"])
async def test_a_result_before_result_by_wins_over_the_expiry(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, order: str,
    after_deadline: float | str,
) -> None:
    """Up to a microsecond before ``result_by``, at or past the deadline too (the grace
    period), the result stands and the sweep leaves the mission alone."""
    streamer, viewer, m = await _accepted_mission(client, container)
    grace = container.settings.result_grace_seconds
    clock.advance(600 + (grace - 0.000001 if after_deadline == "result_by-1us"
                         else float(after_deadline)))

    async def declare() -> httpx.Response:
        return await client.post(f"{API}/missions/{m['id']}/result",
                                 json={"outcome": "failure"}, headers=streamer.headers)

    if order == "result-first":
        r = await declare()
        swept = await _sweep(container)
    elif order == "worker-first":
        swept = await _sweep(container)
        r = await declare()
    else:
        r, swept = await asyncio.gather(declare(), _sweep(container))
    assert r.status_code == 200, r.text
    assert swept == 0
    clock.advance(3600)  # result_by passes after the result: nothing more happens
    assert await _sweep(container) == 0
    await _finish(container)
    final = await _status(client, m["id"])
    assert final["status"] == "failed" and final["settlement"] == "settled"
    assert (await wallet(client, viewer))["cash_balance"] == 10_000


@pytest.mark.parametrize("offset", [-0.000001, 0.0])
async def test_accept_against_the_acceptance_timeout(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, offset: float
) -> None:
    """A pending mission times out at ``accept_by``: accept just before wins, at it loses."""
    streamer, viewer = await _pair(container)
    await top_up(client, viewer, 5000)
    m = await propose(client, viewer, streamer, amount=5000, duration=7200)
    accept_by = (await _status(client, m["id"]))
    assert accept_by["status"] == "pending"
    clock.advance(3600 + offset)  # the default acceptance timeout: one hour
    r, swept = await asyncio.gather(
        client.post(f"{API}/missions/{m['id']}/accept", headers=streamer.headers),
        _sweep(container))
    # The sweep claims due missions with SKIP LOCKED: one the accept held at that moment is
    # left to the next sweep, never expired twice.
    swept += await _sweep(container)
    await _finish(container)
    final = await _status(client, m["id"])
    if offset < 0:
        assert r.status_code == 200 and swept == 0 and final["status"] == "accepted"
        assert final["settlement"] is None
        clock.advance(3601)  # past the deadline (two hours after the proposal)
        assert await _sweep(container) == 0  # the grace period for the result
        assert (await _status(client, m["id"]))["status"] == "accepted"
        clock.advance(container.settings.result_grace_seconds)  # past result_by
        assert await _sweep(container) == 1
        await _finish(container)
        assert (await _status(client, m["id"]))["status"] == "expired"
    else:
        assert r.status_code == 409 and swept == 1 and final["status"] == "expired", r.text
    assert (await wallet(client, viewer))["cash_balance"] == 5000


# -- cancel against accept ----------------------------------------------------------------

@pytest.mark.parametrize("with_reject", [False, True])
async def test_cancel_against_accept_has_one_winner(
    client: httpx.AsyncClient, container: Container, with_reject: bool
) -> None:
    """Eight missions, each cancelled by its creator and accepted (and rejected) by its
    streamer at once, while a fan pledges: one transition wins, the others get 409, and
    whatever wins, the money follows it."""
    rounds = 8
    pairs = [await _pair(container) for _ in range(rounds)]
    fan = await make_user(container)
    await top_up(client, fan, 1000 * rounds)
    ms = []
    for streamer, viewer in pairs:
        await top_up(client, viewer, 2000)
        ms.append(await propose(client, viewer, streamer, amount=2000, duration=600))
    calls = []
    for (streamer, viewer), m in zip(pairs, ms, strict=True):
        url = f"{API}/missions/{m['id']}"
        group = [client.post(f"{url}/cancel", headers=viewer.headers),
                 client.post(f"{url}/accept", headers=streamer.headers),
                 client.post(f"{url}/pledges", json={"amount": 1000}, headers=fan.headers)]
        if with_reject:
            group.append(client.post(f"{url}/reject", headers=streamer.headers))
        calls.append(asyncio.gather(*group))
    results = await asyncio.gather(*calls)
    outcomes = []
    for m, rs in zip(ms, results, strict=True):
        transitions = [rs[0], rs[1], *rs[3:]]
        winners = [r for r in transitions if r.status_code == 200]
        losers = [r for r in transitions if r.status_code != 200]
        assert len(winners) == 1, [(r.status_code, r.text) for r in rs]
        assert all(r.status_code == 409 and _code(r) == "invalid-state" for r in losers), [
            r.text for r in losers]
        final = await _status(client, m["id"])
        assert final["status"] == winners[0].json()["status"]
        assert rs[2].status_code in {201, 409}, rs[2].text
        outcomes.append((final["status"], rs[2].status_code))
    await settle_all(container)
    # the accepted ones end: half succeed, the rest fail
    for i, ((streamer, _), m) in enumerate(zip(pairs, ms, strict=True)):
        if outcomes[i][0] == "accepted":
            r = await client.post(f"{API}/missions/{m['id']}/result", headers=streamer.headers,
                                  json={"outcome": "success" if i % 2 else "failure"})
            assert r.status_code == 200, r.text
    await _finish(container)
    for (streamer, viewer), m in zip(pairs, ms, strict=True):
        final = await _status(client, m["id"])
        assert final["settlement"] == "settled"
        paid = final["total_pledged"]
        if final["status"] == "succeeded":
            assert (await wallet(client, streamer))["cash_balance"] == paid - paid // 10
            assert (await wallet(client, viewer))["cash_balance"] == 0
        else:
            assert (await wallet(client, streamer))["cash_balance"] == 0
            assert (await wallet(client, viewer))["cash_balance"] == 2000
    spent = 0
    for (_, code), m in zip(outcomes, ms, strict=True):
        if code == 201 and (await _status(client, m["id"]))["status"] == "succeeded":
            spent += 1000
    assert (await wallet(client, fan))["cash_balance"] == 1000 * rounds - spent


async def test_a_cancel_racing_the_acceptance_timeout_settles_once(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer, viewer = await _pair(container)
    await top_up(client, viewer, 3000)
    m = await propose(client, viewer, streamer, amount=3000, duration=7200)
    clock.advance(timedelta(hours=1).total_seconds())
    r, swept = await asyncio.gather(
        client.post(f"{API}/missions/{m['id']}/cancel", headers=viewer.headers),
        _sweep(container))
    assert r.status_code == 409 and swept == 1, r.text
    await _finish(container)
    assert (await _status(client, m["id"]))["status"] == "expired"
    assert (await wallet(client, viewer))["cash_balance"] == 3000
