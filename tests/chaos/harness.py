"""The fault harness: a seeded, history-recording load driver against the multi-process
topology (``deploy/local/cluster.py``), and the checkers run on the history and the
databases afterwards.

Every request is recorded as one operation: its kind, user, Idempotency-Key, and how it
ended: ``ok`` (2xx), ``fail`` (a definite 4xx refusal) or ``unknown`` (no answer, or 5xx,
after every retry with the same key). The checkers then require, against the ledger:

* each ``ok`` operation's effect exactly once (its key's stored response names the row
  the client was told about, and no row exists that no key accounts for);
* each ``fail`` one with no effect, each ``unknown`` one at most once;
* the invariants of ``missionlink reconcile``; every mission terminal and settled; the
  outbox drained; one result email per backer and streamer at the SMTP server by
  Message-ID (delivery is at least once: copies of one Message-ID are allowed, and must
  say the same apart from their Date, since a receiver keeps one per Message-ID); the
  journal unchanged in the past.
"""

from __future__ import annotations

import asyncio
import email
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from missionlink.config import normalize_database_url
from tests.infra import load_guards

ROOT = Path(__file__).resolve().parents[2]
cluster_module = load_guards(ROOT / "deploy" / "local" / "cluster.py", "missionlink_local_cluster")
Cluster = cluster_module.Cluster
free_port = cluster_module.free_port

PASSWORD = "correct horse battery"
#: A client's patience with one operation: this many sends with the same key.
TRIES = 25
#: Statuses after which the effect is unknown (the server may or may not have applied it).
UNKNOWN_STATUSES = frozenset({500, 502, 503, 504})


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def smtp_env(port: int) -> dict[str, str]:
    return {"MISSIONLINK_SMTP_HOST": "127.0.0.1", "MISSIONLINK_SMTP_PORT": str(port),
            "MISSIONLINK_SMTP_TLS": "none"}


#: Settings of the processes under test: fast hashing, no per-user pledge limit.
TEST_ENV = {
    "MISSIONLINK_RATE_LIMIT_PLEDGES_PER_MINUTE": "0",
    "MISSIONLINK_RATE_LIMIT_SIGNUPS_PER_MINUTE": "0",
    "MISSIONLINK_RATE_LIMIT_POSTS_PER_MINUTE": "0",
    "MISSIONLINK_ARGON2_TIME_COST": "1",
    "MISSIONLINK_ARGON2_MEMORY_KIB": "8192",
    "MISSIONLINK_PROPOSAL_COOLDOWN_SECONDS": "0",
    "MISSIONLINK_CANCEL_LIMIT_PER_DAY": "1000",
    "MISSIONLINK_BET_WINDOW_SECONDS": "3600",
    # Emails a killed worker had claimed go to the other one this soon.
    "MISSIONLINK_EMAIL_LEASE_SECONDS": "10",
}


@dataclass
class Op:
    kind: str
    user: int
    key: str
    path: str
    invoked: float
    outcome: str = "pending"
    status: int | None = None
    body: Any = None
    sends: int = 0
    ended: float = 0.0
    request: dict[str, Any] | None = None
    token: str | None = None
    #: Sent again, with its key, after the faults stopped.
    retried: bool = False
    #: What each send got: ``reset`` (no answer), the status, ``+replayed`` when the
    #: answer was the stored one of an earlier send (``Idempotent-Replayed``).
    answers: list[str] = field(default_factory=list)
    #: When each send began and ended (wall clock, to match a process's own record of
    #: the moment it was killed).
    spans: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(op.outcome for op in self.ops)

    def fault(self, what: str) -> None:
        self.faults.append((time.monotonic(), what))


def _still_running(r: httpx.Response) -> bool:
    """409 for a key whose first request has not finished: its effect is not known yet."""
    return r.status_code == 409 and str(r.json().get("type", "")).endswith(
        "/idempotency-in-progress")


class Client:
    """Sends each POST with an Idempotency-Key and, on no answer or a 5xx, again with the
    same key (as MissionLink's clients are told to), recording the operation."""

    def __init__(self, http: httpx.AsyncClient, history: History) -> None:
        self.http = http
        self.history = history

    async def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for attempt in range(TRIES):
            try:
                r = await self.http.get(path, headers=headers)
            except httpx.TransportError:
                pass
            else:
                if r.status_code not in UNKNOWN_STATUSES:
                    return r
            await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0))
        raise AssertionError(f"GET {path} never answered")

    async def post(self, kind: str, user: int, path: str, token: str | None,
                   body: dict[str, Any] | None = None) -> Op:
        op = Op(kind, user, f"{kind}-{uuid.uuid4().hex}", path, time.monotonic(),
                request=body, token=token)
        self.history.ops.append(op)
        return await self.send(op)

    async def send(self, op: Op, tries: int = TRIES) -> Op:
        """Send ``op`` until it has a definite answer or ``tries`` sends are spent."""
        headers = {"Idempotency-Key": op.key}
        if op.token:
            headers["Authorization"] = f"Bearer {op.token}"
        path, body = op.path, op.request
        for attempt in range(tries):
            op.sends += 1
            began = time.time()
            try:
                r = await self.http.post(path, json=body, headers=headers)
            except httpx.TransportError:
                op.outcome = "unknown"
                op.answers.append("reset")
                op.spans.append((began, time.time()))
            else:
                op.spans.append((began, time.time()))
                op.answers.append(str(r.status_code) + (
                    "+replayed" if r.headers.get("Idempotent-Replayed") == "true" else ""))
                op.status = r.status_code
                if r.status_code not in UNKNOWN_STATUSES and not _still_running(r):
                    op.outcome = "ok" if r.status_code < 300 else "fail"
                    op.body = r.json() if r.content else None
                    break
                op.outcome = "unknown"
            await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0))
        op.ended = time.monotonic()
        return op

    async def retry_unknown(self) -> None:
        """Send every operation whose outcome is unknown again with its key, now that the
        faults have stopped: each must then answer, and apply at most once."""
        for op in self.history.ops:
            if op.outcome == "unknown":
                op.retried = True
                await self.send(op)


@dataclass
class Actor:
    id: int
    email: str
    token: str


async def sign_up(client: Client, role: str, tag: str) -> Actor:
    address = f"{role}-{tag}-{uuid.uuid4().hex[:6]}@example.com"
    op = await client.post("signup", 0, "/api/v1/auth/signup", None, {
        "email": address, "password": PASSWORD, "display_name": f"{role} {tag}", "role": role})
    assert op.outcome == "ok" or op.status == 409, (op.status, op.body)
    last = "no answer"
    for _ in range(TRIES):
        try:
            r = await client.http.post("/api/v1/auth/login",
                                       json={"email": address, "password": PASSWORD})
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        if r.status_code == 200:
            token = r.json()["access_token"]
            me = await client.get("/api/v1/me", token)
            if me.status_code == 200:
                return Actor(int(me.json()["id"]), address, token)
            last = f"/api/v1/me answered {me.status_code}: {me.text[:300]}"
        else:
            last = f"login answered {r.status_code}: {r.text[:300]}"
        await asyncio.sleep(0.2)
    raise AssertionError(f"could not log in as {address}: {last}")


@dataclass
class World:
    """What the driver knows: actors and the missions it has seen created."""

    streamers: list[Actor]
    fans: list[Actor]
    missions: dict[int, dict[str, Any]] = field(default_factory=dict)


async def _step(client: Client, world: World, rng: random.Random) -> None:
    fan = rng.choice(world.fans)
    streamer = rng.choice(world.streamers)
    open_missions = [m for m in world.missions.values() if m["status"] in ("pending", "accepted")]
    roll = rng.random()
    if roll < 0.08 or not open_missions:
        if rng.random() < 0.3:
            await client.post("topup", fan.id, "/api/v1/wallet/topups", fan.token,
                              {"amount": rng.choice([10_000, 50_000])})
            return
        op = await client.post("mission", fan.id, "/api/v1/missions", fan.token, {
            "streamer_id": streamer.id, "title": f"chaos {rng.randrange(10**6)}",
            "description": "", "amount": rng.choice([1000, 2000]), "duration_seconds": 3600})
        if op.outcome == "ok":
            world.missions[op.body["id"]] = {"id": op.body["id"], "streamer": streamer,
                                             "creator": fan, "status": "pending"}
        return
    m = rng.choice(open_missions)
    mid = m["id"]
    owner: Actor = m["streamer"]
    if roll < 0.70:
        await client.post("pledge", fan.id, f"/api/v1/missions/{mid}/pledges", fan.token,
                          {"amount": rng.choice([1000, 1000, 3000])})
    elif roll < 0.78:
        await client.post("bet", fan.id, f"/api/v1/missions/{mid}/bets", fan.token,
                          {"side": rng.choice(["success", "failure"]),
                           "points": rng.choice([10, 50])})
    elif roll < 0.84:
        await client.post("post", fan.id, f"/api/v1/channels/{owner.id}/posts", fan.token,
                          {"title": "chaos", "body": f"post {rng.randrange(10**6)}"})
    elif roll < 0.90 and m["status"] == "pending":
        op = await client.post("accept", owner.id, f"/api/v1/missions/{mid}/accept", owner.token)
        if op.outcome == "ok":
            m["status"] = op.body["status"]
    elif roll < 0.93 and m["status"] == "pending":
        op = await client.post("reject", owner.id, f"/api/v1/missions/{mid}/reject", owner.token)
        if op.outcome == "ok":
            m["status"] = op.body["status"]
    elif roll < 0.95:
        creator: Actor = m["creator"]
        op = await client.post("cancel", creator.id, f"/api/v1/missions/{mid}/cancel",
                               creator.token)
        if op.outcome == "ok":
            m["status"] = op.body["status"]
    elif m["status"] == "accepted":
        op = await client.post("result", owner.id, f"/api/v1/missions/{mid}/result", owner.token,
                               {"outcome": rng.choice(["success", "failure"])})
        if op.outcome == "ok":
            m["status"] = op.body["status"]


async def drive(client: Client, world: World, *, seed: int, seconds: float,
                lanes: int = 6, max_operations: int = 100_000) -> None:
    """Seeded random operations over ``lanes`` concurrent clients for ``seconds``."""
    ends = time.monotonic() + seconds
    counter = iter(range(max_operations))

    async def lane(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        for _ in counter:
            if time.monotonic() >= ends:
                return
            await _step(client, world, rng)

    await asyncio.gather(*(lane(n) for n in range(lanes)))


async def finish(client: Client, world: World) -> None:
    """End every mission still open, so everything settles: reject what is pending,
    declare a result for what is accepted (refreshing from the server first). Missions
    whose proposal was answered only when sent again are taken from the history."""
    actors = {a.id: a for a in [*world.streamers, *world.fans]}
    for op in client.history.ops:
        if op.kind == "mission" and op.outcome == "ok" and op.body["id"] not in world.missions:
            world.missions[op.body["id"]] = {
                "id": op.body["id"], "streamer": actors[op.request["streamer_id"]],
                "creator": actors[op.user], "status": op.body["status"]}
    for m in world.missions.values():
        r = await client.get(f"/api/v1/missions/{m['id']}")
        m["status"] = r.json()["status"]
        owner: Actor = m["streamer"]
        if m["status"] == "pending":
            op = await client.post("reject", owner.id, f"/api/v1/missions/{m['id']}/reject",
                                   owner.token)
        elif m["status"] == "accepted":
            op = await client.post("result", owner.id, f"/api/v1/missions/{m['id']}/result",
                                   owner.token, {"outcome": "success" if m["id"] % 2 else "failure"})
        else:
            continue
        if op.outcome != "ok":  # it ended meanwhile (expired, say): the checkers judge that
            r = await client.get(f"/api/v1/missions/{m['id']}")
            assert r.json()["status"] not in ("pending", "accepted"), (op.kind, op.status,
                                                                      op.body)


def _dsn(cluster: Any, which: str) -> str:
    return normalize_database_url(cluster.database_url(which)).replace(
        "postgresql+asyncpg://", "postgresql://")


async def core_connection(cluster: Any) -> asyncpg.Connection:
    return await asyncpg.connect(_dsn(cluster, "core"))


async def journal_snapshot(conn: asyncpg.Connection) -> dict[str, tuple[Any, ...]]:
    """Every transfer as it is now, by id (the journal is append-only)."""
    return {row["id"]: tuple(row) for row in await conn.fetch(
        "SELECT id, kind, currency, from_account, to_account, amount, mission_id, created_at "
        "FROM transfers")}


async def wait_quiet(conn: asyncpg.Connection, timeout: float = 240.0) -> None:
    """Until every mission is settled, the outbox is drained and every email sent (an email
    a killed worker had claimed waits out its lease first)."""
    deadline = time.monotonic() + timeout
    while True:
        left = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM missions WHERE settlement IS DISTINCT FROM 'settled' "
            "        AND status IN ('succeeded','failed','rejected','expired','cancelled')) AS s,"
            " (SELECT count(*) FROM outbox WHERE processed_at IS NULL) AS o,"
            " (SELECT count(*) FROM email_jobs WHERE status = 'queued') AS e")
        if (left["s"], left["o"], left["e"]) == (0, 0, 0):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not quiet after {timeout:.0f} s: {dict(left)}")
        await asyncio.sleep(0.5)


def email_content(message: email.message.Message) -> tuple[str, ...]:
    """What a copy of an email says, apart from when it was sent (its Date)."""
    parts = [str(message[h]) for h in ("From", "To", "Subject")]
    for part in message.walk():
        if not part.is_multipart():
            parts.append(str(part.get_payload()))
    return tuple(parts)


#: Operation kind -> the table whose rows its key creates, and the id in its response.
CREATES = {"topup": "topups", "pledge": "pledges", "bet": "bets", "post": "posts",
           "mission": "missions"}


async def check(conn: asyncpg.Connection, history: History, inbox: Inbox,
                reconcile: Callable[[], Awaitable[tuple[int, str]]],
                journal_before: dict[str, tuple[Any, ...]]) -> list[str]:
    """Every violation found (empty when all holds)."""
    problems: list[str] = []
    users = {op.user for op in history.ops if op.user}
    keys = {(r["user_id"], r["key"]): (r["status_code"], r["response_body"])
            for r in await conn.fetch(
                "SELECT user_id, key, status_code, response_body FROM idempotency_keys "
                "WHERE user_id = ANY($1::bigint[])", list(users))}
    claimed: dict[str, Counter[int]] = defaultdict(Counter)
    for op in history.ops:
        if not op.user:
            continue
        stored = keys.get((op.user, op.key))
        stored_body = json.loads(stored[1]) if stored and stored[1] else None
        if op.outcome == "ok":
            if stored is None:
                problems.append(f"{op.kind} {op.key}: acknowledged, but no stored response")
            elif (stored[0], stored_body) != (op.status, op.body):
                problems.append(f"{op.kind} {op.key}: the client was told {op.status} "
                                f"{op.body}, the key holds {stored[0]} {stored_body}")
        elif op.outcome == "fail" and stored is not None and stored[0] is not None:
            problems.append(f"{op.kind} {op.key}: refused {op.status}, but the key holds "
                            f"an effect {stored[0]}")
        if op.kind in CREATES and stored is not None and stored_body:
            # A second bet on the same side adds to the one bet row: count its points.
            claimed[op.kind][int(stored_body["id"])] += (
                int(stored_body["added"]) if op.kind == "bet" else 1)

    def ids(rows: list[Any]) -> Counter[int]:
        """Each row once, or with its ``weight`` (a bet's points)."""
        return Counter({int(r["id"]): int(r["weight"]) if "weight" in r else 1 for r in rows})

    mission_rows = await conn.fetch(
        "SELECT id, creator_id, status, settlement, accept_by, deadline_at,"
        " coalesce(result_by, deadline_at) AS result_by, accepted_at FROM missions")
    tables = {
        "topups": ids(await conn.fetch(
            "SELECT id FROM topups WHERE user_id = ANY($1::bigint[])", list(users))),
        "missions": ids(mission_rows),
        "pledges": ids(await conn.fetch(
            "SELECT p.id FROM pledges p WHERE p.id NOT IN ("
            "  SELECT min(id) FROM pledges GROUP BY mission_id)")),
        "bets": ids(await conn.fetch("SELECT id, points AS weight FROM bets")),
        "posts": ids(await conn.fetch("SELECT id FROM posts WHERE mission_id IS NULL")),
    }
    for kind, table in CREATES.items():
        found, told = tables[table], claimed[kind]
        for row_id, weight in found.items():
            if told[row_id] != weight:
                what = "points staked by keys" if kind == "bet" else "keys made it"
                problems.append(f"{table} row {row_id}: {told[row_id]} {what}, the row says "
                                f"{weight}")
        for row_id in told:
            if row_id not in found:
                problems.append(f"{table} row {row_id}: a key holds it, the table does not")
    now = datetime.now(UTC)
    for m in mission_rows:
        if m["status"] == "expired" and m["deadline_at"] > now and (
                m["accept_by"] is None or m["accept_by"] > now):
            problems.append(f"mission {m['id']}: expired before its deadline "
                            f"{m['deadline_at']:%H:%M:%S} and acceptance time")
        if (m["status"] == "expired" and m["accepted_at"] is not None
                and m["result_by"] > now):
            problems.append(f"mission {m['id']}: accepted, expired before its result_by "
                            f"{m['result_by']:%H:%M:%S}")
        if m["status"] in ("pending", "accepted"):
            problems.append(f"mission {m['id']}: still {m['status']} after the run")
        elif m["settlement"] != "settled":
            problems.append(f"mission {m['id']}: {m['status']} but not settled")
    if await conn.fetchval("SELECT count(*) FROM outbox WHERE processed_at IS NULL"):
        problems.append("outbox: events left unprocessed")
    jobs = await conn.fetch("SELECT message_id, status FROM email_jobs")
    unsent = [j["message_id"] for j in jobs if j["status"] != "sent"]
    if unsent:
        problems.append(f"emails not sent: {unsent[:5]}")
    # Delivery is at least once under a stable Message-ID: a worker killed after the
    # server accepted an email and before marking it sent leaves it to be sent again,
    # under the same Message-ID, and a receiver keeps one message per Message-ID. So each
    # job's Message-ID must arrive at least once, nothing else may arrive, and every copy
    # of one Message-ID must say the same (only its Date may differ), or dropping the
    # later copies would lose what it said.
    received = Counter(str(m["Message-ID"]) for m in inbox.messages)
    wanted = {j["message_id"] for j in jobs}
    for message_id in wanted - set(received):
        problems.append(f"email {message_id}: never reached the SMTP server")
    for message_id in set(received) - wanted:
        problems.append(f"email {message_id}: sent, but no job asked for it")
    copies: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for m in inbox.messages:
        copies[str(m["Message-ID"])].add(email_content(m))
    for message_id, contents in copies.items():
        if len(contents) > 1:
            problems.append(f"email {message_id}: {received[message_id]} copies that differ "
                            "(a receiver keeping one per Message-ID would lose one)")
    journal_now = await journal_snapshot(conn)
    changed = [tid for tid, row in journal_before.items() if journal_now.get(tid) != row]
    if changed:
        problems.append(f"journal: {len(changed)} earlier transfers changed or went: "
                        f"{changed[:5]}")
    code, report = await reconcile()
    if code != 0:
        problems.append(f"reconcile failed:\n{report}")
    return problems
