"""A Hypothesis state machine of missions, pledges, bets and wallets, driven through the
real HTTP API (in-process, over ASGI) and held against a small model of the rules in
``docs``/the product specification: who may pledge, accept, reject, cancel and declare
when; the minimum pledge; the platform fee in basis points; refunds on failure, rejection,
cancellation and expiry; pledge points on success; parimutuel bet payouts with the
rounding dust to the platform; proposal cooldowns and the daily cancel limit.

After every step each wallet's cash and points equal the model's, none is negative, every
mission reads the status the model expects and ``reconcile`` finds the ledger whole.

Each example starts on empty databases: one migrated pair per backend, every table emptied
(and its ids restarted) before the example, behind one container whose pools stay warm. The default is short, so
``make test`` stays fast; ``MISSIONLINK_MODEL_EXAMPLES`` and ``MISSIONLINK_MODEL_STEPS``
make it long (``MISSIONLINK_MODEL_RANDOM=1`` draws new examples instead of the fixed ones).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text

from missionlink import bootstrap
from missionlink.adapters.db.core_tables import core_metadata, wallets
from missionlink.adapters.db.identity_tables import identity_metadata
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.migrations.runner import upgrade_all
from missionlink.services.reconcile import check
from missionlink.workers.runner import Worker
from tests.conftest import _admin, _db_url, make_settings, pg_admin_url
from tests.fakes import MemoryMailer
from tests.helpers import Actor, make_user

EXAMPLES = int(os.environ.get("MISSIONLINK_MODEL_EXAMPLES", "10"))
STEPS = int(os.environ.get("MISSIONLINK_MODEL_STEPS", "20"))
#: Set to 1 for fresh random examples each run; by default the examples are derived
#: from the test alone, so a failure reproduces run after run.
RANDOM = os.environ.get("MISSIONLINK_MODEL_RANDOM") == "1"
API = "/api/v1"
#: Each answer seen, by route and outcome (printed at the end of the test: ``-s``).
OUTCOMES: Counter[str] = Counter()
#: Invariant checks (one after the start of an example and after each step), examples.
CHECKS = [0, 0]

FEE_BPS = 1000
MIN_PLEDGE = 1000
MAX_PLEDGE = 1_000_000
MIN_SECONDS = 60
SIGNUP_POINTS = 1000
BET_WINDOW = 120
ACCEPT_TIMEOUT = 3600  # a channel's default acceptance timeout
COOLDOWN = 300
RESULT_GRACE = 600
CANCEL_LIMIT = 5
DAY = 86_400
KRW_PER_POINT = 100
IDEMPOTENCY_TTL = 86_400
OPEN = ("pending", "accepted")
OVERRIDES: dict[str, object] = {
    "platform_fee_bps": FEE_BPS, "min_pledge": MIN_PLEDGE, "max_pledge": MAX_PLEDGE,
    "min_mission_seconds": MIN_SECONDS, "signup_points": SIGNUP_POINTS,
    "bet_window_seconds": BET_WINDOW, "proposal_cooldown_seconds": COOLDOWN,
    "result_grace_seconds": RESULT_GRACE,
    "cancel_limit_per_day": CANCEL_LIMIT, "idempotency_ttl_seconds": IDEMPOTENCY_TTL,
    # Every read from the database: the model's clock jumps, a cached read would lag it.
    "read_cache_max_entries": 0,
}
STREAMERS = 2
VIEWERS = 3


# -- the model -----------------------------------------------------------------------------

@dataclass
class Mission:
    id: int
    streamer: int
    creator: int
    created: datetime
    accept_by: datetime
    deadline: datetime
    status: str = "pending"
    accepted_at: datetime | None = None
    ended_at: datetime | None = None
    settled: bool = False
    pledges: list[tuple[int, int]] = field(default_factory=list)
    bets: dict[int, tuple[str, int]] = field(default_factory=dict)

    @property
    def result_by(self) -> datetime:
        return self.deadline + timedelta(seconds=RESULT_GRACE)

    def closed(self, now: datetime) -> bool:
        """No more pledges, bets, accept or reject."""
        return now >= self.deadline or (self.status == "pending" and now >= self.accept_by)

    def overdue(self, now: datetime) -> bool:
        """Expired: an accepted mission only once the grace period for its result is over."""
        if self.status == "accepted":
            return now >= self.result_by
        return self.closed(now)

    def effective(self, now: datetime) -> str:
        return "expired" if self.status in OPEN and self.overdue(now) else self.status


@dataclass
class Sent:
    actor: Actor
    path: str
    body: dict[str, Any] | None
    key: str
    at: datetime
    response: httpx.Response


@dataclass
class Wallet:
    cash: int = 0
    points: int = SIGNUP_POINTS


class Refused(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code = status, code


ACTIONS = {"accept": ("pending",), "reject": ("pending",), "cancel": ("pending",),
           "success": ("accepted",), "failure": ("accepted",), "pledge": OPEN, "bet": OPEN}
RESULT = {"accept": "accepted", "reject": "rejected", "cancel": "cancelled",
          "success": "succeeded", "failure": "failed"}


def check_action(m: Mission, action: str, actor: int, now: datetime) -> None:
    """``domain.missions.check_action``, restated."""
    if action in ("accept", "reject", "success", "failure"):
        if actor != m.streamer:
            raise Refused(403, "forbidden")
    elif action == "cancel":
        if actor != m.creator:
            raise Refused(403, "forbidden")
    elif actor == m.streamer:
        raise Refused(403, "forbidden")
    if m.status not in ACTIONS[action]:
        raise Refused(409, "invalid-state")
    if m.overdue(now) if action in ("success", "failure") else m.closed(now):
        raise Refused(409, "deadline-passed")
    if (action == "bet" and m.status == "accepted" and m.accepted_at is not None
            and (now - m.accepted_at).total_seconds() >= BET_WINDOW):
        raise Refused(409, "invalid-state")


class Model:
    def __init__(self, users: list[int], streamers: list[int]) -> None:
        self.wallets = {u: Wallet() for u in users}
        self.streamers = set(streamers)
        self.missions: dict[int, Mission] = {}
        self.fee_revenue = 0
        self.dust = 0

    def propose(self, now: datetime, creator: int, streamer: int, amount: int,
                duration: int) -> None:
        if not MIN_PLEDGE <= amount <= MAX_PLEDGE:
            raise Refused(422, "invalid-input")
        if duration < MIN_SECONDS:
            raise Refused(422, "invalid-input")
        if creator == streamer:
            raise Refused(403, "forbidden")
        if streamer not in self.streamers:
            raise Refused(404, "not-found")
        mine = [m for m in self.missions.values()
                if m.creator == creator and m.ended_at is not None]
        if any(m.streamer == streamer and m.status in ("rejected", "cancelled")
               and m.ended_at > now - timedelta(seconds=COOLDOWN) for m in mine):
            raise Refused(409, "proposal-blocked")
        if sum(1 for m in mine if m.status == "cancelled"
               and m.ended_at > now - timedelta(seconds=DAY)) >= CANCEL_LIMIT:
            raise Refused(409, "proposal-blocked")
        if self.wallets[creator].cash < amount:
            raise Refused(409, "insufficient-funds")

    def pledge(self, now: datetime, m: Mission | None, user: int, amount: int) -> None:
        if not MIN_PLEDGE <= amount <= MAX_PLEDGE:
            raise Refused(422, "invalid-input")
        if m is None:
            raise Refused(404, "not-found")
        check_action(m, "pledge", user, now)
        if self.wallets[user].cash < amount:
            raise Refused(409, "insufficient-funds")

    def bet(self, now: datetime, m: Mission | None, user: int, side: str, points: int) -> None:
        if m is None:
            raise Refused(404, "not-found")
        check_action(m, "bet", user, now)
        if user in m.bets and m.bets[user][0] != side:
            raise Refused(409, "conflict")
        if self.wallets[user].points < points:
            raise Refused(409, "insufficient-funds")

    def expire_and_settle(self, now: datetime) -> None:
        for m in self.missions.values():
            if m.status in OPEN and m.overdue(now):
                m.status, m.ended_at = "expired", now
        for m in self.missions.values():
            if m.status not in OPEN and not m.settled:
                self.settle(m)

    def settle(self, m: Mission) -> None:
        m.settled = True
        if m.status == "succeeded":
            total = sum(a for _, a in m.pledges)
            fee = total * FEE_BPS // 10_000
            self.wallets[m.streamer].cash += total - fee
            self.fee_revenue += fee
            per_user: dict[int, int] = {}
            for u, a in m.pledges:
                per_user[u] = per_user.get(u, 0) + a
            for u, a in per_user.items():
                self.wallets[u].points += a // KRW_PER_POINT
        else:
            for u, a in m.pledges:
                self.wallets[u].cash += a
        winning = {"succeeded": "success", "failed": "failure"}.get(m.status)
        total_pool = sum(p for _, p in m.bets.values())
        winning_pool = sum(p for s, p in m.bets.values() if s == winning)
        if winning is None or winning_pool == 0:
            for u, (_, p) in m.bets.items():
                self.wallets[u].points += p
            return
        paid = 0
        for u, (s, p) in m.bets.items():
            if s == winning:
                share = p * total_pool // winning_pool
                self.wallets[u].points += share
                paid += share
        self.dust += total_pool - paid


# -- one pair of databases, emptied before each example ---------------------------------

class Clock(FrozenClock):
    def set(self, now: datetime) -> None:
        self._now = now


class Backend:
    """One migrated pair of databases and one container (its pools stay warm); every
    table is emptied, and its ids restarted, before each example."""

    def __init__(self, backend: str, root: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.backend = backend
        self.loop = loop
        self.names: dict[str, str] = {}
        urls: dict[str, str] = {}
        if backend == "postgres":
            self.admin = pg_admin_url()
            suffix = uuid.uuid4().hex[:10]
            self.names = {"core": f"ml_model_core_{suffix}",
                          "identity": f"ml_model_identity_{suffix}"}
            for name in self.names.values():
                loop.run_until_complete(_admin(self.admin, f'CREATE DATABASE "{name}"'))
            urls = {"MISSIONLINK_DATABASE_URL": _db_url(self.admin, self.names["core"]),
                    "MISSIONLINK_IDENTITY_DATABASE_URL": _db_url(self.admin,
                                                                 self.names["identity"])}
        (root / "var").mkdir(exist_ok=True)
        self.settings = make_settings(root, urls, **OVERRIDES)
        upgrade_all(self.settings)
        self.clock = Clock()
        self.container = bootstrap.build(self.settings, clock=self.clock, mailer=MemoryMailer())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(self.container)),
            base_url="http://testserver")

    async def reset(self) -> None:
        # Access tokens are checked against the real time: the clock starts there.
        self.clock.set(datetime.now(UTC).replace(microsecond=0))
        for db, metadata in ((self.container.core_db, core_metadata),
                             (self.container.identity_db, identity_metadata)):
            names = [t.name for t in metadata.sorted_tables]
            # The journal refuses deletes (a trigger): set aside inside this transaction.
            async with db.begin() as conn:
                if self.backend == "postgres":
                    guarded = "transfers" in names
                    if guarded:
                        await conn.exec_driver_sql("ALTER TABLE transfers DISABLE TRIGGER USER")
                    await conn.exec_driver_sql(
                        f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
                    if guarded:
                        await conn.exec_driver_sql("ALTER TABLE transfers ENABLE TRIGGER USER")
                else:
                    triggers = list(await conn.execute(text(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")))
                    for name, _ in triggers:
                        await conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
                    for name in reversed(names):
                        await conn.exec_driver_sql(f"DELETE FROM {name}")
                    for _, sql in triggers:
                        await conn.exec_driver_sql(sql)
                    has_sequences = await conn.scalar(text(
                        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"))
                    if has_sequences:
                        await conn.exec_driver_sql("DELETE FROM sqlite_sequence")

    def close(self) -> None:
        async def close() -> None:
            await self.client.aclose()
            await self.container.close()
            for name in self.names.values():
                await _admin(self.admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.loop.run_until_complete(close())


# -- the machine ---------------------------------------------------------------------------

# Mostly what the rules allow, with the refusals at the edges now and then.
AMOUNTS = st.sampled_from([1000, 1000, 1500, 2000, 3000, 7000, 10_000, 25_000, 999, 500])
DURATIONS = st.sampled_from([60, 61, 120, 600, 3599, 3600, 3601, 7200, 90_000, 30])
START_CASH = 40_000
ADVANCES = st.sampled_from([1, 30, 59, 60, 119, 120, 121, 299, 300, 600, 1800, 3600, DAY])
OWNER = st.sampled_from([True, True, True, False])
WHO = st.integers(0, STREAMERS + VIEWERS - 1)
#: A mission: an index into the open ones (or, when False, into all of them).
WHICH = st.tuples(st.integers(0, 50), st.sampled_from([True, True, True, False]))


def build_machine(backend: Backend) -> type[RuleBasedStateMachine]:
    class MissionMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = backend.loop
            self.container: Container | None = None
            self.client: httpx.AsyncClient | None = None

        def run(self, coro: Any) -> Any:
            return self.loop.run_until_complete(coro)

        @initialize()
        def start(self) -> None:
            self.run(self._start())

        async def _start(self) -> None:
            await backend.reset()
            self.clock = backend.clock
            self.container = backend.container
            self.client = backend.client
            self.streamers: list[Actor] = [await make_user(self.container, "streamer")
                                           for _ in range(STREAMERS)]
            self.viewers: list[Actor] = [await make_user(self.container)
                                         for _ in range(VIEWERS)]
            self.users = self.streamers + self.viewers
            self.wallet_route_read = False
            self.last: Sent | None = None
            CHECKS[1] += 1
            self.model = Model([u.id for u in self.users], [s.id for s in self.streamers])
            for u in self.users:
                r = await self.client.post(f"{API}/wallet/topups", json={"amount": START_CASH},
                                           headers=u.headers)
                assert r.status_code == 201, r.text
                self.model.wallets[u.id].cash += START_CASH

        # -- helpers --

        def now(self) -> datetime:
            return self.clock.now()

        def post(self, actor: Actor, path: str, body: dict[str, Any] | None = None
                 ) -> httpx.Response:
            """Every effect carries a fresh Idempotency-Key; the last one that took effect
            is kept for ``replay``."""
            assert self.client is not None
            key = uuid.uuid4().hex
            r = self.run(self.client.post(API + path, json=body,
                                          headers={**actor.headers, "Idempotency-Key": key}))
            if r.status_code < 300:
                self.last = Sent(actor, path, body, key, self.now(), r)
            return r

        def expect(self, r: httpx.Response, predicted: Refused | None, ok: int) -> bool:
            """The answer is the model's: ``ok`` when it allows the step, else its refusal."""
            what = r.request.url.path.rsplit("/", 1)[-1]
            label = (f"{'missions' if what.isdigit() else what}: "
                     f"{predicted.code if predicted else ok}")
            OUTCOMES[label] += 1
            if predicted is None:
                assert r.status_code == ok, r.text
                return True
            assert r.status_code == predicted.status, (predicted, r.text)
            if predicted.status != 422:
                assert r.json()["type"].endswith("/" + predicted.code), (predicted, r.text)
            return False

        def mission(self, which: tuple[int, bool]) -> Mission | None:
            index, open_only = which
            ms = [m for _, m in sorted(self.model.missions.items())]
            if open_only and any(m.status in OPEN for m in ms):
                ms = [m for m in ms if m.status in OPEN]
            return ms[index % len(ms)] if ms else None

        # -- rules --

        @rule(who=st.integers(0, STREAMERS + VIEWERS - 1),
              amount=st.sampled_from([1000, 5000, 20_000]))
        def top_up(self, who: int, amount: int) -> None:
            u = self.users[who]
            r = self.post(u, "/wallet/topups", {"amount": amount})
            assert r.status_code == 201, r.text
            self.model.wallets[u.id].cash += amount

        # ``to`` = STREAMERS is the first viewer: a user without a channel
        @rule(who=st.integers(0, STREAMERS + VIEWERS - 1),
              to=st.sampled_from([*range(STREAMERS)] * 3 + [STREAMERS]),
              amount=AMOUNTS, duration=DURATIONS)
        def propose(self, who: int, to: int, amount: int, duration: int) -> None:
            creator = self.users[who]
            # index STREAMERS is a viewer: no channel there
            target = self.users[to]
            now = self.now()
            try:
                self.model.propose(now, creator.id, target.id, amount, duration)
                predicted = None
            except Refused as exc:
                predicted = exc
            r = self.post(creator, "/missions", {
                "streamer_id": target.id, "title": "미션", "description": "",
                "amount": amount, "duration_seconds": duration})
            if self.expect(r, predicted, 201):
                body = r.json()
                deadline = now + timedelta(seconds=duration)
                m = Mission(body["id"], target.id, creator.id, now,
                            min(deadline, now + timedelta(seconds=ACCEPT_TIMEOUT)), deadline,
                            pledges=[(creator.id, amount)])
                assert body["id"] not in self.model.missions
                self.model.missions[m.id] = m
                self.model.wallets[creator.id].cash -= amount

        @precondition(lambda self: bool(self.model.missions))
        @rule(which=WHICH, who=WHO, amount=AMOUNTS)
        def pledge(self, which: tuple[int, bool], who: int, amount: int) -> None:
            m, u = self.mission(which), self.users[who]
            try:
                self.model.pledge(self.now(), m, u.id, amount)
                predicted = None
            except Refused as exc:
                predicted = exc
            r = self.post(u, f"/missions/{m.id if m else 999_999}/pledges", {"amount": amount})
            if self.expect(r, predicted, 201):
                assert m is not None
                m.pledges.append((u.id, amount))
                self.model.wallets[u.id].cash -= amount
                assert r.json()["total_pledged"] == sum(a for _, a in m.pledges)

        def _transition(self, which: tuple[int, bool], action: str, as_owner: bool, who: int
                        ) -> None:
            m = self.mission(which)
            assert m is not None
            owner = m.creator if action == "cancel" else m.streamer
            actor = next(u for u in self.users if u.id == owner) if as_owner else self.users[who]
            try:
                check_action(m, action, actor.id, self.now())
                predicted = None
            except Refused as exc:
                predicted = exc
            path = {"success": "result", "failure": "result"}.get(action, action)
            body = {"outcome": action} if path == "result" else None
            r = self.post(actor, f"/missions/{m.id}/{path}", body)
            if self.expect(r, predicted, 200):
                m.status = RESULT[action]
                if m.status == "accepted":
                    m.accepted_at = self.now()
                else:
                    m.ended_at = self.now()
                assert r.json()["status"] == m.status

        @precondition(lambda self: bool(self.model.missions))
        @rule(which=WHICH, as_owner=OWNER, who=WHO)
        def accept(self, which: tuple[int, bool], as_owner: bool, who: int) -> None:
            self._transition(which, "accept", as_owner, who)

        @precondition(lambda self: bool(self.model.missions))
        @rule(which=WHICH, as_owner=OWNER, who=WHO)
        def reject(self, which: tuple[int, bool], as_owner: bool, who: int) -> None:
            self._transition(which, "reject", as_owner, who)

        @precondition(lambda self: bool(self.model.missions))
        @rule(which=WHICH, as_owner=OWNER, who=WHO)
        def cancel(self, which: tuple[int, bool], as_owner: bool, who: int) -> None:
            self._transition(which, "cancel", as_owner, who)

        @precondition(lambda self: bool(self.model.missions))
        @rule(which=WHICH, outcome=st.sampled_from(["success", "failure"]), as_owner=OWNER,
              who=WHO)
        def result(self, which: tuple[int, bool], outcome: str, as_owner: bool, who: int
                   ) -> None:
            self._transition(which, outcome, as_owner, who)

        @precondition(lambda self: bool(self.model.missions))
        @rule(which=WHICH, who=WHO, side=st.sampled_from(["success", "failure"]),
              points=st.sampled_from([1, 37, 100, 250, 600]))
        def bet(self, which: tuple[int, bool], who: int, side: str, points: int) -> None:
            m, u = self.mission(which), self.users[who]
            assert m is not None
            try:
                self.model.bet(self.now(), m, u.id, side, points)
                predicted = None
            except Refused as exc:
                predicted = exc
            r = self.post(u, f"/missions/{m.id}/bets", {"side": side, "points": points})
            if self.expect(r, predicted, 201):
                before = m.bets.get(u.id, (side, 0))[1]
                m.bets[u.id] = (side, before + points)
                self.model.wallets[u.id].points -= points
                assert r.json()["points"] == before + points

        @rule(seconds=ADVANCES)
        def advance(self, seconds: int) -> None:
            self.clock.advance(seconds)

        @precondition(lambda self: any(m.status in OPEN for m in self.model.missions.values()))
        @rule(which=st.integers(0, 50), edge=st.sampled_from(["deadline", "accept_by", "result_by"]),
              nudge=st.sampled_from([-0.000001, 0.0, 0.000001]))
        def advance_to_an_edge(self, which: int, edge: str, nudge: float) -> None:
            """Move the clock to (or a microsecond around) an open mission's deadline,
            acceptance timeout or end of the grace period for its result."""
            open_ = [m for m in self.model.missions.values() if m.status in OPEN]
            m = open_[which % len(open_)]
            at = getattr(m, edge) + timedelta(seconds=nudge)
            if at > self.now():
                self.clock.advance((at - self.now()).total_seconds())

        @precondition(lambda self: self.last is not None
                      and (self.now() - self.last.at).total_seconds() < IDEMPOTENCY_TTL)
        @rule(other_body=st.booleans())
        def replay(self, other_body: bool) -> None:
            """The last effect again with its key: the first answer, replayed, and nothing
            changes (the invariants check); with another body, 422 and nothing changes."""
            last = self.last
            assert last is not None and self.client is not None
            body = last.body
            if other_body:
                body = dict(body or {})
                for name, change in (("amount", 1000), ("points", 1)):
                    if name in body:
                        body[name] += change
                if "outcome" in body:
                    body["outcome"] = {"success": "failure"}.get(body["outcome"], "success")
            r = self.run(self.client.post(
                API + last.path, json=body,
                headers={**last.actor.headers, "Idempotency-Key": last.key}))
            if other_body:
                assert r.status_code == 422, r.text
                assert r.json()["type"].endswith("/idempotency-key-reused"), r.text
                OUTCOMES["replay: another body, key reused"] += 1
                return
            assert r.status_code == last.response.status_code, r.text
            assert r.headers.get("Idempotent-Replayed") == "true"
            assert r.json() == last.response.json()
            OUTCOMES["replay: replayed"] += 1

        @rule()
        def run_worker(self) -> None:
            assert self.container is not None
            self.run(Worker(self.container).run_until_idle())
            self.model.expire_and_settle(self.now())

        # -- invariants --

        @invariant()
        def wallets_match(self) -> None:
            if self.container is None:
                return

            async def balances() -> dict[int, tuple[int, int]]:
                assert self.container is not None
                async with self.container.core_db.read() as conn:
                    rows = await conn.execute(select(
                        wallets.c.user_id, wallets.c.cash_balance, wallets.c.points_balance))
                    return {u: (cash, points) for u, cash, points in rows}

            # One query per step; the wallet route itself is read once per example.
            found = self.run(balances())
            assert found == {u: (w.cash, w.points) for u, w in self.model.wallets.items()}
            assert all(cash >= 0 and points >= 0 for cash, points in found.values())
            if not self.wallet_route_read:
                self.wallet_route_read = True
                assert self.client is not None
                for u in self.users:
                    r = self.run(self.client.get(f"{API}/wallet", headers=u.headers))
                    w = self.model.wallets[u.id]
                    assert r.json() == {"cash_balance": w.cash, "points_balance": w.points,
                                        "debt": 0}

        @invariant()
        def missions_match(self) -> None:
            if self.container is None:
                return
            assert self.client is not None
            for m in self.model.missions.values():
                r = self.run(self.client.get(f"{API}/missions/{m.id}"))
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["status"] == m.effective(self.now()), (m, body)
                assert body["total_pledged"] == sum(a for _, a in m.pledges)
                assert (body["settlement"] == "settled") == m.settled, (m, body)

        @invariant()
        def ledger_reconciles(self) -> None:
            if self.container is None:
                return
            CHECKS[0] += 1

            async def reconcile() -> None:
                assert self.container is not None
                async with self.container.core_db.read() as conn:
                    report = await check(conn)
                assert report.ok, report.render()

            self.run(reconcile())

    return MissionMachine


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_missions_pledges_bets_and_wallets_follow_the_model(
    backend: str, tmp_path: Path
) -> None:
    loop = asyncio.new_event_loop()
    db = Backend(backend, tmp_path, loop)
    try:
        machine = build_machine(db)
        machine.TestCase.settings = settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
            derandomize=not RANDOM, database=None,
            suppress_health_check=list(HealthCheck))
        OUTCOMES.clear()
        CHECKS[:] = [0, 0]
        run_state_machine_as_test(machine, settings=machine.TestCase.settings)
        print(f"\n{backend}: {CHECKS[0] - CHECKS[1]} steps in {CHECKS[1]} examples "
              f"(at most {STEPS} each);", ", ".join(f"{k} x{n}" for k, n in sorted(OUTCOMES.items())))
    finally:
        try:
            db.close()
        finally:
            loop.close()
