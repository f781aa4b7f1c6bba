"""One table of pledge refusals and successes, run unchanged on SQLite and on PostgreSQL.

On SQLite the container's pledge desk is the portable transaction; on PostgreSQL it is the
batched function of migration 0019. Each row states the status, the problem code, the
words of the refusal and what the databases hold afterwards, so a backend that answers or
writes differently fails its row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, or_, select

from missionlink.adapters.db.core_tables import (
    idempotency_keys,
    mission_totals,
    outbox,
    pledges,
    topups,
    transfers,
    wallets,
)
from missionlink.adapters.payments.providers import ProviderDispute
from missionlink.bootstrap import Container
from missionlink.domain import events as topics
from missionlink.domain import ledger as L
from missionlink.domain.clock import FrozenClock
from missionlink.domain.missions import Status
from missionlink.migrations.earlier import core_revision
from missionlink.services.chargebacks import apply_dispute
from missionlink.services.missions import expire_due
from missionlink.services.pledges import PostgresPledgeDesk, TransactionalPledgeDesk
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up

LARGEST_ID = 2**63 - 1
FAN_CASH = 5_000
DURATION = 7_200  # the channel's default acceptance window is 3,600 s
KEY = "parity-key"


@dataclass
class World:
    client: httpx.AsyncClient
    container: Container
    clock: FrozenClock
    streamer: Actor
    creator: Actor
    fan: Actor
    mission_id: int
    first: httpx.Response | None = None

    def actor(self, name: str) -> Actor:
        actor: Actor = getattr(self, name)
        return actor

    async def post(self, actor: Actor, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(f"/api/v1/missions/{self.mission_id}{path}",
                                      headers=actor.headers, **kwargs)

    async def pledge(self, amount: int, key: str | None = None, *,
                     actor: Actor | None = None, mission_id: int | None = None,
                     extra: dict[str, Any] | None = None) -> httpx.Response:
        headers = dict((actor or self.fan).headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.client.post(
            f"/api/v1/missions/{mission_id or self.mission_id}/pledges",
            json={"amount": amount, **(extra or {})}, headers=headers)


Arrange = Callable[[World], Awaitable[None]]


async def _nothing(w: World) -> None:
    return None


async def _accept(w: World) -> None:
    assert (await w.post(w.streamer, "/accept")).status_code == 200


async def _reject(w: World) -> None:
    assert (await w.post(w.streamer, "/reject")).status_code == 200


async def _cancel(w: World) -> None:
    assert (await w.post(w.creator, "/cancel")).status_code == 200


def _result(outcome: str) -> Arrange:
    async def arrange(w: World) -> None:
        await _accept(w)
        r = await w.post(w.streamer, "/result", json={"outcome": outcome})
        assert r.status_code == 200, r.text
    return arrange


async def _swept_as_expired(w: World) -> None:
    w.clock.advance(DURATION)
    async with w.container.core_db.begin() as conn:
        assert await expire_due(conn, w.clock.now()) == 1


async def _accepted_then_past_deadline(w: World) -> None:
    await _accept(w)
    w.clock.advance(DURATION)


async def _accepted_then_past_result_by(w: World) -> None:
    await _accept(w)
    w.clock.advance(DURATION + w.container.settings.result_grace_seconds)


async def _creator_topped_up(w: World) -> None:
    await top_up(w.client, w.creator, 1_000)


async def _past_acceptance_window(w: World) -> None:
    w.clock.advance(3_600)


def _pledged_with_key(amount: int, then: Arrange = _nothing) -> Arrange:
    async def arrange(w: World) -> None:
        w.first = await w.pledge(amount, KEY)
        assert w.first.status_code == 201, w.first.text
        await then(w)
    return arrange


async def _refused_with_key_then_topped_up(w: World) -> None:
    r = await w.pledge(FAN_CASH + 1000, KEY)
    assert r.status_code == 409, r.text
    await top_up(w.client, w.fan, 5_000)


async def _in_debt(w: World) -> None:
    """The fan pledges 1,000, then a chargeback takes all 5,000 of their top-up back:
    the 4,000 left in cash and 1,000 owed."""
    assert (await w.pledge(1_000)).status_code == 201
    async with w.container.core_db.begin() as conn:
        pid = await conn.scalar(select(topups.c.provider_payment_id)
                                .where(topups.c.user_id == w.fan.id))
        dispute = ProviderDispute("dp_parity", str(pid), FAN_CASH, L.KRW, "opened")
        await apply_dispute(conn, provider="sandbox", dispute=dispute, now=w.clock.now())


async def _key_a_day_old_on_a_long_mission(w: World) -> None:
    long = 3 * 86_400
    r = await w.client.patch("/api/v1/streamers/me/settings", headers=w.streamer.headers,
                             json={"accept_timeout_seconds": long})
    assert r.status_code == 200, r.text
    await top_up(w.client, w.creator, 1_000)
    m = await propose(w.client, w.creator, w.streamer, amount=1_000, duration=long)
    w.mission_id = m["id"]
    await _accept(w)
    await _pledged_with_key(1_000)(w)
    w.clock.advance(w.container.settings.idempotency_ttl_seconds)


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    code: str | None = None
    detail: str | None = None
    amount: int = 1_000
    actor: str = "fan"
    key: str | None = None
    arrange: Arrange = _nothing
    mission: Callable[[World], int] = field(default=lambda w: w.mission_id)
    replayed: bool = False
    reads: str | None = None
    #: More fields of the body (a message, anonymity) and the message as stored.
    extra: dict[str, Any] = field(default_factory=dict)
    stored_message: str | None = None


def _state(detail: str) -> str:
    return f"cannot pledge a mission that is {detail}"


EXPIRED = "the mission's deadline has passed; it has expired"
MESSAGE_TOO_LONG = "message: must be at most 100 characters"
CLOSED = "the mission's deadline has passed: pledges and bets are closed"
OWN = "a streamer cannot pledge to or bet on their own channel's missions"
BOUNDS = "amount must be between 1000 and 1000000 KRW"
IN_DEBT = ("a chargeback left this wallet 1000 KRW in debt; pledges and bets are refused "
           "until it is repaid")
REUSED = "this Idempotency-Key was already used with a different request body or path"

CASES = [
    Case("below the minimum", 422, "invalid-input", BOUNDS, amount=999),
    Case("above the maximum", 422, "invalid-input", BOUNDS, amount=1_000_001),
    Case("not enough cash", 409, "insufficient-funds", "not enough cash in the wallet for 5001",
         amount=FAN_CASH + 1),
    Case("wallet in debt", 409, "wallet-in-debt", IN_DEBT, arrange=_in_debt),
    Case("wallet in debt and not enough cash", 409, "wallet-in-debt", IN_DEBT,
         amount=FAN_CASH + 1, arrange=_in_debt),
    Case("wallet in debt with a key", 409, "wallet-in-debt", IN_DEBT, key=KEY,
         arrange=_in_debt),
    Case("unknown mission", 404, "not-found", "mission 999999 does not exist",
         mission=lambda w: 999_999),
    Case("largest id", 404, "not-found", f"mission {LARGEST_ID} does not exist",
         mission=lambda w: LARGEST_ID),
    *(Case(f"mission {status}", 409, "invalid-state", _state(status), arrange=arrange,
           reads=status)
      for status, arrange in [("rejected", _reject), ("cancelled", _cancel),
                              ("succeeded", _result("success")), ("failed", _result("failure")),
                              ("expired", _swept_as_expired)]),
    Case("accepted mission in the grace period for its result", 409, "deadline-passed",
         CLOSED, arrange=_accepted_then_past_deadline, reads="accepted"),
    Case("accepted mission past result_by", 409, "deadline-passed", CLOSED,
         arrange=_accepted_then_past_result_by, reads="expired"),
    Case("pending mission past its acceptance window", 409, "deadline-passed", EXPIRED,
         arrange=_past_acceptance_window, reads="expired"),
    Case("streamer on their own channel", 403, "forbidden", OWN, actor="streamer"),
    Case("streamer on their own closed mission", 403, "forbidden", OWN, actor="streamer",
         arrange=_reject),
    Case("streamer on an unknown mission", 404, "not-found", "mission 999999 does not exist",
         actor="streamer", mission=lambda w: 999_999),
    Case("closed mission and not enough cash", 409, "invalid-state", _state("rejected"),
         amount=FAN_CASH + 1, arrange=_reject),
    Case("pledge to a pending mission", 201, reads="pending"),
    Case("pledge to an accepted mission", 201, arrange=_accept, reads="accepted"),
    Case("the proposer pledges again", 201, actor="creator", arrange=_creator_topped_up),
    Case("pledge of the whole wallet", 201, amount=FAN_CASH),
    Case("pledge with a key", 201, key=KEY),
    Case("pledge with a message", 201, key=KEY, extra={"message": "  힘내세요!  "},
         stored_message="힘내세요!"),
    Case("pledge with a blocked word", 201, extra={"message": "FUCK 매운맛 fuck"},
         stored_message="**** 매운맛 ****"),
    Case("anonymous pledge with a message", 201,
         extra={"message": "익명 응원", "anonymous": True}, stored_message="익명 응원"),
    Case("blank message", 201, extra={"message": "   "}),
    Case("message too long", 422, "invalid-input", MESSAGE_TOO_LONG,
         extra={"message": "가" * 101}),
    Case("same key, same body", 201, key=KEY, amount=2_000,
         arrange=_pledged_with_key(2_000), replayed=True),
    Case("same key, same body, after the mission closed", 201, key=KEY, amount=2_000,
         arrange=_pledged_with_key(2_000, then=_reject), replayed=True, reads="rejected"),
    Case("same key, other body", 422, "idempotency-key-reused", REUSED, key=KEY,
         amount=3_000, arrange=_pledged_with_key(2_000)),
    Case("same key, other body, unknown mission", 422, "idempotency-key-reused", REUSED,
         key=KEY, arrange=_pledged_with_key(2_000), mission=lambda w: 999_999),
    Case("same key, other body out of bounds", 422, "invalid-input", BOUNDS, key=KEY,
         amount=999, arrange=_pledged_with_key(2_000)),
    Case("same key after a refusal", 201, key=KEY, amount=FAN_CASH + 1000,
         arrange=_refused_with_key_then_topped_up),
    Case("same key after it expired", 201, key=KEY, amount=1_000,
         arrange=_key_a_day_old_on_a_long_mission),
]


async def _world(client: httpx.AsyncClient, container: Container,
                 clock: FrozenClock) -> World:
    streamer = await make_user(container, "streamer")
    creator, fan = await make_user(container), await make_user(container)
    await top_up(client, creator, 10_000)
    await top_up(client, fan, FAN_CASH)
    m = await propose(client, creator, streamer, amount=10_000, duration=DURATION)
    return World(client, container, clock, streamer, creator, fan, m["id"])


async def _snapshot(container: Container, user_id: int, mission_id: int) -> dict[str, Any]:
    """Everything a pledge by ``user_id`` to ``mission_id`` may write."""
    async with container.core_db.read() as conn:
        cash, points = (await conn.execute(
            select(wallets.c.cash_balance, wallets.c.points_balance)
            .where(wallets.c.user_id == user_id))).one()
        total = await conn.scalar(
            select(func.coalesce(func.sum(mission_totals.c.amount), 0))
            .where(mission_totals.c.mission_id == mission_id))
        rows = await conn.execute(
            select(pledges.c.id, pledges.c.mission_id, pledges.c.amount,
                   pledges.c.message, pledges.c.anonymous)
            .where(pledges.c.user_id == user_id).order_by(pledges.c.id))
        moves = await conn.execute(
            select(transfers.c.id, transfers.c.kind, transfers.c.currency,
                   transfers.c.from_account, transfers.c.to_account, transfers.c.amount,
                   transfers.c.mission_id)
            .where(or_(transfers.c.from_account == L.user_cash(user_id),
                       transfers.c.to_account == L.escrow(mission_id)))
            .order_by(transfers.c.id))
        events = await conn.execute(
            select(outbox.c.topic, outbox.c.payload)
            .where(outbox.c.topic == topics.PLEDGE_CREATED).order_by(outbox.c.id))
        keys = await conn.execute(
            select(idempotency_keys.c.key, idempotency_keys.c.status_code,
                   idempotency_keys.c.response_body)
            .where(idempotency_keys.c.user_id == user_id))
        return {
            "cash": int(cash), "points": int(points), "total": int(total or 0),
            "pledges": [tuple(r) for r in rows],
            "transfers": sorted(tuple(r) for r in moves),
            "events": [(r.topic, dict(r.payload)) for r in events],
            "keys": {r.key: (r.status_code, json.loads(r.response_body or "null"))
                     for r in keys},
        }


def _assert_problem(r: httpx.Response, case: Case) -> None:
    assert r.status_code == case.status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith(f"/{case.code}"), problem
    if case.code == "wallet-in-debt":
        assert problem["debt"] == 1_000
    # A body the request model refuses is described by the validation layer's words.
    assert problem["detail"] == case.detail or (
        case.detail == MESSAGE_TOO_LONG and "must be at most 100 characters" in problem["detail"]
    ), problem


def _expected_after_a_pledge(before: dict[str, Any], body: dict[str, Any], w: World,
                             actor: Actor, case: Case, mission_id: int) -> dict[str, Any]:
    pid = body["id"]
    total = before["total"] + case.amount
    anonymous = bool(case.extra.get("anonymous", False))
    assert body == {"id": pid, "mission_id": mission_id, "user_id": actor.id,
                    "amount": case.amount, "total_pledged": total,
                    "created_at": w.clock.now().isoformat().replace("+00:00", "Z"),
                    "message": case.stored_message, "anonymous": anonymous}
    keys = dict(before["keys"])
    if case.key is not None:
        keys[case.key] = (201, body)
    return {
        "cash": before["cash"] - case.amount,
        # Pledge points are earned at settlement, and only if the mission succeeds.
        "points": before["points"],
        "total": total,
        "pledges": [*before["pledges"],
                    (pid, mission_id, case.amount, case.stored_message, anonymous)],
        "transfers": sorted([*before["transfers"],
                             (f"pledge:{pid}", "pledge", "KRW", L.user_cash(actor.id),
                              L.escrow(mission_id), case.amount, mission_id)]),
        "events": [*before["events"],
                   ("pledge.created", {"mission_id": mission_id, "streamer_id": w.streamer.id,
                                       "pledge_id": pid, "user_id": actor.id,
                                       "amount": case.amount, "total_pledged": total,
                                       "message": case.stored_message,
                                       "anonymous": anonymous})],
        "keys": keys,
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_the_pledge_table(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, case: Case
) -> None:
    w = await _world(client, container, clock)
    await case.arrange(w)
    actor = w.actor(case.actor)
    mission_id = case.mission(w)
    before = await _snapshot(container, actor.id, w.mission_id)

    r = await w.pledge(case.amount, case.key, actor=actor, mission_id=mission_id,
                       extra=case.extra)

    after = await _snapshot(container, actor.id, w.mission_id)
    if case.status != 201:
        _assert_problem(r, case)
        assert after == before
    elif case.replayed:
        assert w.first is not None
        assert r.status_code == 201 and r.headers["Idempotent-Replayed"] == "true"
        assert r.json() == w.first.json()
        assert after == before
    else:
        assert r.status_code == 201, r.text
        assert "Idempotent-Replayed" not in r.headers
        assert after == _expected_after_a_pledge(before, r.json(), w, actor, case, mission_id)
    if case.reads is not None:
        shown = (await client.get(f"/api/v1/missions/{w.mission_id}")).json()
        assert shown["status"] == case.reads
    await settle_all(container)
    await assert_ledger_ok(container)


async def test_concurrent_duplicates_of_one_key_take_effect_once(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    w = await _world(client, container, clock)
    before = await _snapshot(container, w.fan.id, w.mission_id)
    rs = await asyncio.gather(*(w.pledge(1_000, KEY) for _ in range(8)))
    after = await _snapshot(container, w.fan.id, w.mission_id)

    firsts = [r for r in rs if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(firsts) == 1, [(r.status_code, dict(r.headers)) for r in rs]
    for r in rs:
        if r.status_code == 201:
            assert r.json() == firsts[0].json()
        else:
            assert r.status_code == 409 and r.json()["type"].endswith("/idempotency-in-progress")
    case = Case("concurrent", 201, key=KEY)
    assert after == _expected_after_a_pledge(before, firsts[0].json(), w, w.fan, case,
                                             w.mission_id)
    await assert_ledger_ok(container)


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_pledges_per_minute": 3}])
async def test_the_pledge_rate_limit_refuses_before_anything_is_written(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    w = await _world(client, container, clock)
    for key in (None, "k2", "k3"):
        assert (await w.pledge(1_000, key)).status_code == 201
    before = await _snapshot(container, w.fan.id, w.mission_id)
    r = await w.pledge(1_000, "k4")
    assert r.status_code == 429 and r.json()["type"].endswith("/rate-limited")
    assert "Retry-After" in r.headers
    assert await _snapshot(container, w.fan.id, w.mission_id) == before
    # The limit is per user: the proposer, one proposal into their own three, still pledges.
    await top_up(client, w.creator, 1_000)
    assert (await w.pledge(1_000, actor=w.creator)).status_code == 201
    await assert_ledger_ok(container)


async def test_each_backend_places_pledges_through_its_own_desk(container: Container) -> None:
    expected = PostgresPledgeDesk if container.core_db.is_postgres else TransactionalPledgeDesk
    assert type(container.pledges) is expected


@pytest.mark.parametrize("name", ["0004_place_pledge_function",
                                  "0005_place_pledges_in_batches",
                                  "0018_set_based_pledge_batches",
                                  "0019_per_pledge_batches_again"])
def test_the_pledge_function_spells_out_no_domain_value(name: str) -> None:
    """Statuses, accounts, kinds, currencies and topics reach it as call parameters, so a
    change of a domain constant cannot leave the function behind."""
    module = core_revision(name)
    sql = module.function_sql() if hasattr(module, "function_sql") else module.FUNCTION
    values = [*(s.value for s in Status), *(k.value for k in L.TransferKind), L.KRW,
              topics.PLEDGE_CREATED]
    account_parts = [L.user_cash(0)[:5], L.escrow(0)[:8], L.user_cash(0)[-5:],
                     L.escrow(0)[-7:]]
    found = [v for v in values if f"'{v}'" in sql] + [p for p in account_parts if p in sql]
    assert found == []
