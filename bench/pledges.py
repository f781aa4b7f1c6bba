"""Pledge throughput benchmark on PostgreSQL, against a real ``missionlink serve``.

What it does, in one run (about 2.5 minutes with the defaults):

1. creates its own uniquely named databases (identity, core, pgbench) through the admin URL
   ``MISSIONLINK_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1/postgres``),
   migrates them, and seeds fans (wallet, completed sandbox top-up and its journal transfer,
   so the ledger stays balanced) and streamers straight through SQL;
2. runs ``pgbench`` (TPC-B: ``-i -s 8``, then ``-c 8 -j 2 -T 20``) into its own database on
   the same server, as the yardstick;
3. for each ``--workers`` value starts ``missionlink serve --port <free> --workers N`` as a
   subprocess and drives ``POST /api/v1/missions/{id}/pledges`` with an asyncio httpx client:
   (a) closed loop, C connections, pledges spread over many missions; (b) closed loop, all on
   one hot mission; (c) open loop at half the peak of (a)/(b), for p99;
4. checks the ledger (``missionlink.services.reconcile.check``) and that the pledge rows
   equal the 201 responses, prints the ratios, and drops every database it made, kills the
   server, removes its temp dir (also on failure or Ctrl-C).

Every request carries an ``Idempotency-Key`` (the path a real client takes for money);
``--no-idempotency-key`` measures the bare path. ``--client raw`` swaps httpx for a lean
asyncio HTTP/1.1 client: on a small machine httpx costs more CPU per request than the
server does, so the raw client is the one that shows the service. ``--profile DIR`` adds a
py-spy sampled phase per server (collapsed stacks into DIR and a summary on stdout); it is
not counted in the figures. Results and how to read them: bench/README.md, "Pledges".

``--short`` runs every phase for a couple of seconds against one server, with a short
pgbench, so CI keeps the script working (about 30 s). The exit status is 1 when the run
itself broke: ``reconcile`` fails, the pledge rows do not match the 201s, the server
answered anything but 201, or a phase created nothing. It never depends on a speed.

    .venv/bin/python bench/pledges.py [--short] [--workers 1 2] [--client httpx|raw] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from common import (  # type: ignore[import-not-found]
    admin_exec,
    db_url,
    free_port,
    redis_url,
    stop_group,
)
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from missionlink.adapters.db.core_tables import (
    channels,
    members,
    missions,
    pledges,
    topups,
    transfers,
    wallets,
)
from missionlink.adapters.db.engine import Database
from missionlink.adapters.db.identity_tables import users
from missionlink.adapters.security.tokens import TokenService, load_or_create_key
from missionlink.config import Settings
from missionlink.domain import ledger as L
from missionlink.migrations.runner import upgrade_all
from missionlink.services.reconcile import check

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1/postgres"
PLEDGE_AMOUNT = 1000
FAN_CASH = 10_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------- results


@dataclass
class Phase:
    name: str
    requests: int = 0
    created: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, 201s only
    completions: list[float] = field(default_factory=list)  # perf_counter of each 201
    elapsed: float = 0.0
    target_rate: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.created / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))] * 1000

    def quarter_rates(self, start: float) -> list[float]:
        """201s per second in each quarter of the phase (shows drift, e.g. a growing scan)."""
        if not self.elapsed:
            return []
        q = self.elapsed / 4
        counts = [0, 0, 0, 0]
        for t in self.completions:
            counts[min(3, int((t - start) / q))] += 1
        return [c / q for c in counts]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "created": self.created,
            "statuses": dict(self.statuses),
            "seconds": round(self.elapsed, 2),
            "pledges_per_s": round(self.rate, 1),
            "target_rate": None if self.target_rate is None else round(self.target_rate, 1),
            "p50_ms": round(self.pct(0.50), 1),
            "p99_ms": round(self.pct(0.99), 1),
            "max_ms": round(max(self.latencies) * 1000, 1) if self.latencies else None,
            "cpu_cores": {k: round(v, 2) for k, v in self.cpu.items()},
            "cpu_ms_per_pledge": self.cpu_ms_per_pledge(),
        }

    def cpu_ms_per_pledge(self) -> dict[str, float]:
        """CPU milliseconds per created pledge: steadier than rates on a shared machine."""
        if not self.created:
            return {}
        return {k: round(1000 * self.cpu[k] * self.elapsed / self.created, 2)
                for k in ("server", "postgres", "client") if k in self.cpu}

    def line(self) -> str:
        cpu = " ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in self.cpu.items())
        bad = {k: v for k, v in self.statuses.items() if k != 201}
        target = f" (target {self.target_rate:.0f}/s)" if self.target_rate else ""
        return (
            f"{self.name}: {self.created}/{self.requests} created in {self.elapsed:.1f}s = "
            f"{self.rate:.0f} pledges/s{target}, p50 {self.pct(0.5):.1f} ms, "
            f"p99 {self.pct(0.99):.1f} ms; non-201 {bad or 0}; cores used: {cpu}; "
            f"CPU ms per pledge: {self.cpu_ms_per_pledge()}"
        )


# --------------------------------------------------------------------------- CPU meters


def _proc_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (comm, ppid, CPU ticks of the process itself) for every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        table[int(entry)] = (comm, int(rest[1]), int(rest[11]) + int(rest[12]))
    return table


def _postgres_pids(table: dict[int, tuple[str, int, int]], prefix: str) -> dict[int, int]:
    """PostgreSQL processes that work for us -> CPU ticks: backends on this run's databases
    (by their process title) and the shared WAL writer, checkpointer, background writer and
    autovacuum. Backends of other databases on a shared server are left out."""
    ours = {}
    for pid, (comm, _, ticks) in table.items():
        if not comm.startswith("postgres"):
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        backend = "(" in title and ")" in title  # "postgres: user db host(port) state"
        if prefix in title or (title.startswith("postgres: ") and not backend):
            ours[pid] = ticks
    return ours


def _machine_busy() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


@dataclass
class CpuSnap:
    client: float  # seconds of this process
    server: dict[int, int]  # pid -> ticks, the server's process tree
    postgres: dict[int, int]  # pid -> ticks, see _postgres_pids
    busy: int  # machine-wide ticks, all CPUs
    total: int
    sessions: int = 0


def cpu_snapshot(server_pid: int | None, prefix: str) -> CpuSnap:
    table = _proc_table()
    tree = set()
    if server_pid is not None:
        tree.add(server_pid)
        grew = True
        while grew:
            grew = False
            for pid, (_, ppid, _) in table.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
    busy, total = _machine_busy()
    return CpuSnap(client=sum(os.times()[:2]),
                   server={p: table[p][2] for p in tree if p in table},
                   postgres=_postgres_pids(table, prefix), busy=busy, total=total)


def _grown(before: dict[int, int], after: dict[int, int]) -> float:
    """Seconds of CPU used in between by the processes in ``after`` (last seen ticks)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / CLK_TCK


def cpu_delta(before: CpuSnap, after: CpuSnap, seconds: float) -> dict[str, float]:
    """Cores used on average: client (this process), server, postgres, other (contamination:
    anything else on the machine, other users or the kernel), and how busy the machine was."""
    out = {"client": (after.client - before.client) / seconds,
           "server": _grown(before.server, after.server) / seconds,
           "postgres": _grown(before.postgres, after.postgres) / seconds}
    total = after.total - before.total
    busy = (after.busy - before.busy) / total if total else 0.0
    out["other"] = max(0.0, busy * (os.cpu_count() or 1) - sum(out.values()))
    out["machine_busy_%"] = 100 * busy
    return out


@dataclass
class Meter:
    """CPU of client, server tree and PostgreSQL, and new core-database sessions.

    PostgreSQL backends come and go when a connection pool overflows, so their CPU is sampled
    every 0.2 s during a phase: a backend that lived between two samples is still missed."""

    server_pid: int | None
    admin_url: str
    core_db: str
    prefix: str
    seen: dict[int, int] = field(default_factory=dict)
    sampler: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.seen.update(_postgres_pids(_proc_table(), self.prefix))

    async def start(self) -> CpuSnap:
        snap = cpu_snapshot(self.server_pid, self.prefix)
        snap.sessions = await pg_sessions(self.admin_url, self.core_db)
        self.seen = dict(snap.postgres)
        self.sampler = asyncio.create_task(self._sample())
        return snap

    async def stop(self, before: CpuSnap, seconds: float) -> dict[str, float]:
        if self.sampler is not None:
            self.sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sampler
        after = cpu_snapshot(self.server_pid, self.prefix)
        self.seen.update(after.postgres)
        after.postgres = self.seen
        after.sessions = await pg_sessions(self.admin_url, self.core_db)
        out = cpu_delta(before, after, seconds)
        out["new_pg_sessions"] = after.sessions - before.sessions
        return out


# --------------------------------------------------------------------------- databases


@dataclass
class State:
    """Everything that must be undone at the end, whatever happens."""

    admin_url: str
    prefix: str
    tmp: Path
    databases: list[str] = field(default_factory=list)
    server: subprocess.Popen[bytes] | None = None


async def server_facts(admin_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(db_url(admin_url, make_url(admin_url).database or "postgres"))
    try:
        facts = {"server_version": await conn.fetchval("SHOW server_version")}
        for name in ("synchronous_commit", "fsync", "shared_buffers", "max_connections",
                     "wal_sync_method"):
            facts[name] = await conn.fetchval(f"SHOW {name}")
        return facts
    finally:
        await conn.close()


async def pg_sessions(admin_url: str, database: str) -> int:
    """Sessions ever opened on ``database`` (PostgreSQL 14+): new ones mean pool churn."""
    conn = await asyncpg.connect(db_url(admin_url, make_url(admin_url).database or "postgres"))
    try:
        value = await conn.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1", database)
        return int(value or 0)
    except asyncpg.PostgresError:
        return 0
    finally:
        await conn.close()


async def create_databases(state: State) -> dict[str, str]:
    urls = {}
    for role in ("identity", "core", "pgbench"):
        name = f"{state.prefix}_{role}"
        await admin_exec(state.admin_url, f'CREATE DATABASE "{name}"')
        state.databases.append(name)
        urls[role] = db_url(state.admin_url, name)
    return urls


async def drop_databases(state: State) -> None:
    for name in list(state.databases):
        try:
            await admin_exec(state.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            state.databases.remove(name)
        except Exception as exc:  # keep dropping the others
            print(f"bench: could not drop database {name}: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------- seeding


@dataclass
class Seed:
    fans: list[int]
    streamers: list[int]
    tokens: dict[int, str]


async def seed_users(settings: Settings, n_fans: int, n_streamers: int) -> Seed:
    now = datetime.now(UTC)
    people = [("streamer", i) for i in range(n_streamers)] + [("viewer", i) for i in range(n_fans)]
    identity = Database(settings.identity_url)
    core = Database(settings.core_url)
    try:
        async with identity.begin() as conn:
            rows = [
                {"email": f"bench-{role}-{i}@example.com",
                 "email_normalized": f"bench-{role}-{i}@example.com", "password_hash": "x",
                 "display_name": f"Bench {role} {i}", "role": role, "language": "ko",
                 "created_at": now}
                for role, i in people
            ]
            result = await conn.execute(
                insert(users).returning(users.c.id, users.c.role, sort_by_parameter_order=True),
                rows,
            )
            created = [(r.id, r.role) for r in result]
        streamers = [uid for uid, role in created if role == "streamer"]
        fans = [uid for uid, role in created if role == "viewer"]
        async with core.begin() as conn:
            await conn.execute(insert(members), [
                {"user_id": uid, "display_name": f"Bench {uid}", "role": role, "created_at": now}
                for uid, role in created
            ])
            await conn.execute(insert(wallets), [
                {"user_id": uid, "cash_balance": FAN_CASH if role == "viewer" else 0,
                 "points_balance": 0}
                for uid, role in created
            ])
            await conn.execute(insert(channels), [
                {"streamer_id": uid, "missions_enabled": True, "min_mission_amount": 1000,
                 "accept_timeout_seconds": 3600, "overlay_token": secrets.token_urlsafe(24),
                 "updated_at": now}
                for uid in streamers
            ])
            result = await conn.execute(
                insert(topups).returning(topups.c.id, topups.c.user_id,
                                         sort_by_parameter_order=True),
                [{"user_id": uid, "amount": FAN_CASH, "provider": "sandbox",
                  "provider_payment_id": f"bench-{uid}", "status": "completed",
                  "created_at": now, "completed_at": now} for uid in fans],
            )
            await conn.execute(insert(transfers), [
                {"id": f"topup:{r.id}", "kind": L.TransferKind.topup.value, "currency": L.KRW,
                 "from_account": L.provider_clearing("sandbox"),
                 "to_account": L.user_cash(r.user_id), "amount": FAN_CASH, "created_at": now}
                for r in result
            ])
    finally:
        await identity.dispose()
        await core.dispose()
    key = load_or_create_key("", settings.data_dir)
    tokens = TokenService(key, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                          ttl_seconds=3600)
    minted = {uid: tokens.issue(uid, "viewer", now) for uid in fans}
    return Seed(fans=fans, streamers=streamers, tokens=minted)


async def create_missions(settings: Settings, seed: Seed, count: int, label: str) -> list[int]:
    """Accepted missions, open for a day, spread over the streamers."""
    now = datetime.now(UTC)
    core = Database(settings.core_url)
    try:
        async with core.begin() as conn:
            result = await conn.execute(
                insert(missions).returning(missions.c.id, sort_by_parameter_order=True),
                [{"streamer_id": seed.streamers[i % len(seed.streamers)],
                  "creator_id": seed.fans[i % len(seed.fans)],
                  "title": f"bench {label} {i}", "description": "", "status": "accepted",
                  "fee_bps": settings.platform_fee_bps, "created_at": now,
                  "accept_by": now + timedelta(hours=1), "deadline_at": now + timedelta(days=1),
                  "accepted_at": now} for i in range(count)],
            )
            return [r.id for r in result]
    finally:
        await core.dispose()


#: the sharded running totals, where the schema has them
TOTALS_SQL = """INSERT INTO mission_totals (mission_id, shard, amount, pledges)
    SELECT :m, 0, sum(amount), count(*) FROM pledges WHERE mission_id = :m"""

BACKLOG_SQL = [
    """INSERT INTO pledges (mission_id, user_id, amount, created_at)
       SELECT :m, (CAST(:fans AS bigint[]))[1 + g % :nfans], :amount, :now
       FROM generate_series(1, :n) AS g""",
    """INSERT INTO transfers (id, kind, currency, from_account, to_account, amount, mission_id,
                              created_at)
       SELECT 'pledge:' || p.id, 'pledge', 'KRW', 'user:' || p.user_id || ':' || 'cash',
              'mission:' || p.mission_id || ':' || 'escrow', p.amount, p.mission_id,
              p.created_at
       FROM pledges p WHERE p.mission_id = :m""",
    """UPDATE wallets w SET cash_balance = w.cash_balance - s.total
       FROM (SELECT user_id, sum(amount) AS total FROM pledges WHERE mission_id = :m
             GROUP BY user_id) s
       WHERE w.user_id = s.user_id""",
]


async def seed_backlog(settings: Settings, seed: Seed, mission_id: int, count: int) -> None:
    """``count`` earlier pledges on one mission, journal and wallets kept in step; vacuumed
    (the state autovacuum leaves a long-running hot mission in)."""
    core = Database(settings.core_url)
    params = {"m": mission_id, "fans": seed.fans, "nfans": len(seed.fans),
              "amount": PLEDGE_AMOUNT, "n": count, "now": datetime.now(UTC)}
    try:
        async with core.begin() as conn:
            for sql in BACKLOG_SQL:
                await conn.execute(text(sql), params)
            if await conn.scalar(text("SELECT to_regclass('mission_totals') IS NOT NULL")):
                await conn.execute(text(TOTALS_SQL), params)
        async with core.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE pledges, transfers, wallets"))
    finally:
        await core.dispose()


# --------------------------------------------------------------------------- server


#: ``--set NAME=VALUE``: settings of the server under test, on top of the ones below.
SERVER_SETTINGS: dict[str, str] = {}


def server_env(urls: dict[str, str], data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
    env.update({
        # As deployed: JSON log lines, one a request.
        "MISSIONLINK_ENV": "staging",
        "MISSIONLINK_METRICS_PORT": "0",
        "MISSIONLINK_DATABASE_URL": urls["core"],
        "MISSIONLINK_IDENTITY_DATABASE_URL": urls["identity"],
        "MISSIONLINK_DATA_DIR": str(data_dir),
        "MISSIONLINK_RATE_LIMIT_PLEDGES_PER_MINUTE": "0",
        "MISSIONLINK_SERVE_WORKER": "0",
        "MISSIONLINK_ACCESS_TOKEN_SECONDS": "3600",
        # shared by every process, as `serve --workers` above 1 requires
        "MISSIONLINK_BROKER_URL": redis_url(),
    })
    env.update({f"MISSIONLINK_{k.upper()}": v for k, v in SERVER_SETTINGS.items()})
    return env


def spawn_server(state: State, urls: dict[str, str], workers: int, port: int) -> None:
    """``missionlink serve`` in its own session, so the whole process group can be ended."""
    with (state.tmp / f"serve-w{workers}.log").open("wb") as log:
        state.server = subprocess.Popen(
            [sys.executable, "-m", "missionlink.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            env=server_env(urls, state.tmp), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def start_server(state: State, urls: dict[str, str], workers: int) -> int:
    port = free_port()
    spawn_server(state, urls, workers, port)
    assert state.server is not None
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
        while time.monotonic() < deadline:
            if state.server.poll() is not None:
                raise RuntimeError(f"server exited:\n{server_log_tail(state, workers)}")
            with contextlib.suppress(httpx.HTTPError):
                healthy = (await client.get("/healthz")).status_code == 200
                # with several workers, wait until each worker process exists
                if healthy and (workers == 1 or len(server_children(state)) >= workers):
                    return port
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server did not become healthy:\n{server_log_tail(state, workers)}")


def server_children(state: State) -> list[int]:
    if state.server is None:
        return []
    return [pid for pid, (_, ppid, _) in _proc_table().items() if ppid == state.server.pid]


def server_log_tail(state: State, workers: int) -> str:
    path = state.tmp / f"serve-w{workers}.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def stop_server(state: State) -> None:
    proc = state.server
    if proc is None:
        return
    state.server = None
    stop_group(proc)


# --------------------------------------------------------------------------- load


BODY = json.dumps({"amount": PLEDGE_AMOUNT}).encode()


class Requests:
    """Round-robin over fans (no two in-flight pledges share a wallet) and a mission list."""

    def __init__(self, seed: Seed, tag: str, keyed: bool, client_kind: str) -> None:
        self.seed = seed
        self.tag = tag
        self.keyed = keyed
        self.client_kind = client_kind
        self.counter = itertools.count()

    def next(self, mission_ids: list[int]) -> tuple[str, dict[str, str]]:
        i = next(self.counter)
        fan = self.seed.fans[i % len(self.seed.fans)]
        mission = mission_ids[i % len(mission_ids)]
        headers = {"authorization": f"Bearer {self.seed.tokens[fan]}",
                   "content-type": "application/json"}
        if self.keyed:
            headers["idempotency-key"] = f"{self.tag}-{i}"
        return f"/api/v1/missions/{mission}/pledges", headers


class HttpxClient:
    """httpx.AsyncClient with ``connections`` keep-alive connections."""

    def __init__(self, port: int, connections: int) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections),
        )

    async def warm(self, n: int) -> None:
        await asyncio.gather(*(self.client.get("/healthz") for _ in range(n)))

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        try:
            r = await self.client.post(path, content=body, headers=headers)
            return r.status_code, (r.text if r.status_code != 201 else "")
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    async def aclose(self) -> None:
        await self.client.aclose()


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


class RawClient:
    """A lean HTTP/1.1 keep-alive client on asyncio streams: what it costs per request is a
    small fraction of httpx's, so the server rather than the load generator is measured."""

    def __init__(self, port: int, connections: int) -> None:
        self.port = port
        self.limit = connections
        self.opened = 0
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue())
        self.all: list[asyncio.StreamWriter] = []

    async def _acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.opened < self.limit:
            self.opened += 1
            try:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.opened -= 1
                raise
            self.all.append(conn[1])
            return conn
        return await self.idle.get()

    async def _request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self._acquire()
        try:
            writer.write(head + body)
            header = await reader.readuntil(b"\r\n\r\n")
            status = int(header[9:12])
            m = _CONTENT_LENGTH.search(header)
            if m is not None:
                payload = await reader.readexactly(int(m.group(1)))
            else:  # no length: the body runs to the end of the connection
                payload = await reader.read()
                raise ConnectionResetError("response without content-length")
            if b"connection: close" in header.lower():
                raise ConnectionResetError("server closed the connection")
        except BaseException:
            writer.close()
            self.opened -= 1
            raise
        self.idle.put_nowait((reader, writer))
        return status, payload

    async def warm(self, n: int) -> None:
        head = f"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n\r\n".encode()
        await asyncio.gather(*(self._request(head, b"") for _ in range(min(n, self.limit))))

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n"
                f"content-length: {len(body)}\r\n{lines}\r\n").encode()
        try:
            status, payload = await asyncio.wait_for(self._request(head, body), 60)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ValueError) as exc:
            return 0, f"{type(exc).__name__}: {exc}"
        return status, (payload.decode(errors="replace") if status != 201 else "")

    async def aclose(self) -> None:
        for writer in self.all:
            writer.close()


Client = HttpxClient | RawClient


def make_client(kind: str, port: int, connections: int) -> Client:
    return RawClient(port, connections) if kind == "raw" else HttpxClient(port, connections)


async def _send(client: Client, phase: Phase, path: str, headers: dict[str, str],
                started: float) -> None:
    phase.requests += 1
    status, text = await client.post(path, headers, BODY)
    done = time.perf_counter()
    phase.statuses[status] += 1
    if status == 201:
        phase.created += 1
        phase.latencies.append(done - started)
        phase.completions.append(done)
    elif len(phase.errors) < 5:
        phase.errors.append(f"{status} {text[:300]}")


def show(phase: Phase) -> None:
    say(phase.line())
    for err in phase.errors:
        say(f"  {phase.name} error: {err}")
    if phase.requests and not phase.created:
        raise RuntimeError(f"{phase.name}: no pledge was created; see the errors above")


async def closed_loop(name: str, port: int, reqs: Requests, mission_ids: list[int],
                      concurrency: int, max_requests: int, max_seconds: float,
                      meter: Meter) -> tuple[Phase, float]:
    """``concurrency`` connections, each sending its next pledge when the last one answered."""
    phase = Phase(name)
    issued = 0
    client = make_client(reqs.client_kind, port, concurrency)
    try:
        # open the connections first so the phase measures pledges, not TCP handshakes
        await client.warm(concurrency)
        before = await meter.start()
        start = time.perf_counter()
        stop_at = start + max_seconds

        async def user_loop() -> None:
            nonlocal issued
            while issued < max_requests and time.perf_counter() < stop_at:
                issued += 1
                path, headers = reqs.next(mission_ids)
                await _send(client, phase, path, headers, time.perf_counter())

        await asyncio.gather(*(user_loop() for _ in range(concurrency)))
        phase.elapsed = time.perf_counter() - start
        phase.cpu = await meter.stop(before, phase.elapsed)
    finally:
        await client.aclose()
    return phase, start


async def open_loop(name: str, port: int, reqs: Requests, mission_ids: list[int], rate: float,
                    seconds: float, meter: Meter) -> Phase:
    """Requests scheduled at a fixed rate; latency counts from the scheduled send time, so
    time spent queued behind a slow response is counted (no coordinated omission)."""
    phase = Phase(name, target_rate=rate)
    n = max(1, int(rate * seconds))
    client = make_client(reqs.client_kind, port, 256)
    try:
        await client.warm(32)
        before = await meter.start()
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(n):
            at = start + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            path, headers = reqs.next(mission_ids)
            tasks.append(asyncio.create_task(_send(client, phase, path, headers, at)))
        await asyncio.gather(*tasks)
        phase.elapsed = time.perf_counter() - start
        phase.cpu = await meter.stop(before, phase.elapsed)
    finally:
        await client.aclose()
    return phase


# --------------------------------------------------------------------------- pgbench


async def run_pgbench(url: str, scale: int, clients: int, threads: int, seconds: int
                      ) -> dict[str, Any]:
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    conn_args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
                 "-U", parsed.username or "postgres"]
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise RuntimeError("pgbench is not installed (apt-get install postgresql-client)")

    async def run(*args: str, sample: float = 0) -> tuple[str, dict[str, float]]:
        proc = await asyncio.create_subprocess_exec(
            pgbench, *conn_args, *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        cpu: dict[str, float] = {}
        if sample > 0:  # PostgreSQL's CPU in the middle of the run, while its backends live
            await asyncio.sleep(2)
            before, t0 = cpu_snapshot(proc.pid, parsed.database or ""), time.perf_counter()
            await asyncio.sleep(sample)
            cpu = cpu_delta(before, cpu_snapshot(proc.pid, parsed.database or ""),
                            time.perf_counter() - t0)
        out, _ = await proc.communicate()
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"pgbench {' '.join(args)} failed:\n{text[-2000:]}")
        return text, cpu

    say(f"pgbench -i -s {scale} into {parsed.database}")
    await run("-i", "-q", "-s", str(scale), parsed.database or "")
    say(f"pgbench -c {clients} -j {threads} -T {seconds} (TPC-B)")
    text, cpu = await run("-c", str(clients), "-j", str(threads), "-T", str(seconds),
                          parsed.database or "", sample=max(1.0, seconds - 4))
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    latency = re.search(r"latency average = ([0-9.]+) ms", text)
    if tps is None:
        raise RuntimeError(f"could not read pgbench's tps:\n{text}")
    return {"tps": float(tps.group(1)), "latency_avg_ms": float(latency.group(1)) if latency
            else None, "postgres_cores": round(cpu["postgres"], 2),
            "pgbench_client_cores": round(cpu["server"], 2),
            "other_cores": round(cpu["other"], 2),
            "machine_busy_%": round(cpu["machine_busy_%"], 1),
            "command": f"pgbench -c {clients} -j {threads} -T {seconds} (scale {scale})"}


# --------------------------------------------------------------------------- profiling


async def profile_phase(state: State, port: int, reqs: Requests, mission_ids: list[int],
                        concurrency: int, seconds: float, out_dir: Path, label: str,
                        meter: Meter) -> tuple[Phase | None, dict[str, Any]]:
    """A closed-loop spread phase with py-spy sampling the server; a summary of the stacks."""
    pyspy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if pyspy is None or state.server is None:
        say("profile: py-spy not found (.venv/bin/pip install py-spy); skipped")
        return None, {}
    os.makedirs(out_dir, exist_ok=True)
    raw = out_dir / f"pledges-{label}.txt"
    spy = await asyncio.create_subprocess_exec(
        pyspy, "record", "--pid", str(state.server.pid), "--subprocesses", "--nonblocking",
        "--rate", "200", "--duration", str(int(seconds)), "--format", "raw", "-o", str(raw),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)
    phase, _ = await closed_loop(f"{label} profiled", port, reqs, mission_ids, concurrency,
                                 10**9, seconds - 1.5, meter)
    await spy.wait()
    show(phase)
    if not raw.exists():
        say("profile: py-spy wrote nothing (ptrace not permitted?)")
        return phase, {}
    summary = summarize_stacks(raw.read_text())
    say(f"profile: {summary['samples']} busy samples (+{summary['idle_samples']} idle) -> {raw}")
    for title, key, n in (("by category", "categories", 20), ("self time", "self", 15),
                          ("inclusive time", "inclusive", 40)):
        print(f"    busy samples {title}:")
        for name, share in summary[key][:n]:
            print(f"      {share:5.1f}%  {name}")
    return phase, summary


IDLE_LEAVES = ("Condition.wait", "Queue.get", "select (selectors", "poll (selectors")

#: (category, substring of any frame on the stack); first match wins, so the order matters.
STACK_CATEGORIES = [
    ("JWT verify (Ed25519 signature per request)", "TokenService.verify"),
    ("threadpool hop for sync dependencies", "run_in_threadpool"),
    ("threadpool hop for sync dependencies", "WorkerThread.run"),
    ("threadpool hop for sync dependencies", "run_sync_in_worker_thread"),
    ("threadpool hop for sync dependencies", "Condition.notify"),
    ("new DB connections (pool overflow churn)", "AsyncAdapt_dbapi_connection.create"),
    ("new DB connections (pool overflow churn)", "connect_utils"),
    ("connection ping at checkout (each one before 243ff89; now after 1 s idle)",
     "_async_ping"),
    ("access log + request log line", "(logging/"),
    ("access log + request log line", "(structlog/"),
]
#: categories for the rest, by the file of the innermost frame
LEAF_CATEGORIES = [
    ("asyncpg driver (protocol, prepare, transaction)", "(asyncpg/"),
    ("SQLAlchemy Core (compile, params, results, pool)", "(sqlalchemy/"),
    ("MissionLink code", "(missionlink/"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(uvicorn/"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(starlette/"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(fastapi/"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(pydantic"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(anyio/"),
    ("metrics (prometheus_client)", "(prometheus_client/"),
    ("event loop (uvloop/asyncio, incl. socket I/O)", "(asyncio/"),
]


def summarize_stacks(text: str) -> dict[str, Any]:
    """Shares of busy samples: by category, by function (self) and by function (inclusive)."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = idle = 0
    for line in text.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        # process labels ('process PID:"command line"', parent first) may hold ';'
        stack = re.sub(r'^(process \d+:".*?"(;|$))+', "", stack)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [re.sub(r"\(/\S*/(site-packages|src|python3\.\d+)/", "(", f) for f in frames]
        frames = [f for f in frames if f and not f.startswith(("process ", "thread "))]
        if not frames or frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        self_time[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count
        joined = ";".join(frames)
        category = next((name for name, needle in STACK_CATEGORIES if needle in joined), None)
        if category is None:
            category = next((name for name, needle in LEAF_CATEGORIES if needle in frames[-1]),
                            "other")
        categories[category] += count

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(40)] if total else []

    return {"samples": total, "idle_samples": idle, "categories": share(categories),
            "self": share(self_time), "inclusive": share(inclusive)}


# --------------------------------------------------------------------------- main


async def measure_server(state: State, args: argparse.Namespace, settings: Settings, seed: Seed,
                         port: int, reqs: Requests, meter: Meter, label: str,
                         spread_ids: list[int], hot_id: int, out: dict[str, Any]) -> list[Phase]:
    """Phases (a) spread, (b) hot, (c) half-peak, (d) deep hot mission against one server."""
    warm, _ = await closed_loop(f"{label} warmup", port, reqs, spread_ids, args.concurrency,
                                args.warmup, 20, meter)
    show(warm)
    spread, _ = await closed_loop(f"{label} (a) spread", port, reqs, spread_ids,
                                  args.concurrency, args.requests, args.seconds, meter)
    show(spread)
    hot, hot_start = await closed_loop(f"{label} (b) hot", port, reqs, [hot_id],
                                       args.concurrency, args.requests, args.seconds, meter)
    show(hot)
    quarters = hot.quarter_rates(hot_start)
    say(f"{label} (b) hot, pledges/s by quarter of the phase: "
        + ", ".join(f"{q:.0f}" for q in quarters))
    peak = max(spread.rate, hot.rate)
    paced = await open_loop(f"{label} (c) half-peak", port, reqs, spread_ids, peak / 2,
                            args.paced_seconds, meter)
    show(paced)
    phases = [warm, spread, hot, paced]
    out.update({
        "spread": spread.summary(), "hot": hot.summary(),
        "hot_quarters_per_s": [round(q, 1) for q in quarters], "half_peak": paced.summary(),
        "hot_vs_spread": round(hot.rate / spread.rate, 3),
        "spread_missions": len(spread_ids), "hot_mission": hot_id,
    })
    if args.hot_backlog > 0:
        (deep_id,) = await create_missions(settings, seed, 1, f"{label} deep")
        await seed_backlog(settings, seed, deep_id, args.hot_backlog)
        say(f"mission {deep_id}: seeded {args.hot_backlog} earlier pledges (vacuumed)")
        deep, _ = await closed_loop(f"{label} (d) hot, {args.hot_backlog} earlier pledges",
                                    port, reqs, [deep_id], args.concurrency, args.requests,
                                    args.seconds / 2, meter)
        show(deep)
        phases.append(deep)
        out["hot_with_backlog"] = deep.summary() | {"earlier_pledges": args.hot_backlog}
    if args.profile:
        profiled, prof = await profile_phase(state, port, reqs, spread_ids, args.concurrency,
                                             args.profile_seconds, Path(args.profile), label,
                                             meter)
        if profiled is not None:
            phases.append(profiled)
        out["profile"] = prof
    out["created"] = sum(ph.created for ph in phases)
    return phases


def spawn_bare(state: State, env: dict[str, str], port: int) -> None:
    """``bench/bare_pledge_app.py`` under uvicorn, served as ``missionlink serve`` is."""
    with (state.tmp / "bare.log").open("wb") as log:
        state.server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_pledge_app:app", "--app-dir",
             str(Path(__file__).resolve().parent), "--host", "127.0.0.1", "--port", str(port),
             "--loop", "uvloop", "--http", "httptools", "--no-access-log",
             "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


async def measure_bare(state: State, args: argparse.Namespace, urls: dict[str, str],
                       reqs: Requests, mission_ids: list[int]) -> Phase:
    """Phase (a) against ``bench/bare_pledge_app.py``: the same client and load on an
    endpoint that only parses the request and makes one INSERT (in this run's pgbench
    database), served by uvicorn as ``serve`` is. Its rate is the ceiling of a Python HTTP
    endpoint with one round trip per request on this machine."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
    env.update({"BARE_DSN": urls["pgbench"].replace("postgresql+asyncpg://", "postgresql://"),
                "BARE_POOL": str(args.concurrency)})
    spawn_bare(state, env, port)
    proc = state.server
    assert proc is not None
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the bare endpoint did not start:\n"
                                       + (state.tmp / "bare.log").read_text(errors="replace"))
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        meter = Meter(proc.pid, state.admin_url, make_url(urls["pgbench"]).database or "",
                      state.prefix)
        warm, _ = await closed_loop("bare warmup", port, reqs, mission_ids, args.concurrency,
                                    args.warmup, 20, meter)
        show(warm)
        phase, _ = await closed_loop("bare (a) spread", port, reqs, mission_ids,
                                     args.concurrency, args.requests, args.seconds, meter)
        show(phase)
        return phase
    finally:
        stop_server(state)


def machine_facts() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")),
                 platform.processor())
    import missionlink

    code = Path(missionlink.__file__).resolve().parent  # what the server will run too
    try:
        commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "."],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += " + uncommitted changes" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "not a git checkout"
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "kernel": platform.release(), "code": str(code), "commit": commit}


async def bench(state: State, args: argparse.Namespace) -> dict[str, Any]:
    facts = {**machine_facts(), **await server_facts(state.admin_url)}
    say(f"code under test: {facts['code']} ({facts['commit']})")
    if SERVER_SETTINGS:
        say(f"server settings: {SERVER_SETTINGS}")
    say(f"machine: {facts['nproc']} CPUs, {facts['cpu_model']}; PostgreSQL "
        f"{facts['server_version']}, synchronous_commit={facts['synchronous_commit']}, "
        f"fsync={facts['fsync']}")
    if facts["synchronous_commit"] != "on" or facts["fsync"] != "on":
        say("WARNING: commits are not durable on this server; the figures are not comparable")
    urls = await create_databases(state)
    say(f"created databases {', '.join(state.databases)}")
    settings = Settings(database_url=urls["core"], identity_database_url=urls["identity"],
                        data_dir=state.tmp)
    await asyncio.to_thread(upgrade_all, settings)
    say("migrated identity and core")
    seed = await seed_users(settings, args.fans, args.streamers)
    say(f"seeded {len(seed.fans)} fans with {FAN_CASH} KRW each and "
        f"{len(seed.streamers)} streamers")

    results: dict[str, Any] = {"machine": facts, "args": vars(args) | {"profile": None},
                               "servers": {}}
    if args.pgbench_seconds > 0:
        results["pgbench"] = await run_pgbench(urls["pgbench"], args.pgbench_scale, 8, 2,
                                               args.pgbench_seconds)
        say(f"pgbench: {results['pgbench']['tps']:.0f} tps, latency avg "
            f"{results['pgbench']['latency_avg_ms']} ms; cores used: postgres "
            f"{results['pgbench']['postgres_cores']}, pgbench "
            f"{results['pgbench']['pgbench_client_cores']}, other "
            f"{results['pgbench']['other_cores']}")

    created_total = backlog_total = non_201 = 0
    for workers in args.workers:
        label = f"w{workers}"
        spread_ids = await create_missions(settings, seed, args.missions, f"{label} spread")
        (hot_id,) = await create_missions(settings, seed, 1, f"{label} hot")
        reqs = Requests(seed, f"{state.prefix}-{label}", keyed=not args.no_idempotency_key,
                        client_kind=args.client)
        port = await start_server(state, urls, workers)
        assert state.server is not None
        pid = state.server.pid
        meter = Meter(pid, state.admin_url, make_url(urls["core"]).database or "", state.prefix)
        say(f"serve --workers {workers} up on 127.0.0.1:{port} (pid {pid}); "
            f"{len(spread_ids)} spread missions, hot mission {hot_id}")
        out: dict[str, Any] = {}
        try:
            phases = await measure_server(state, args, settings, seed, port, reqs, meter,
                                          label, spread_ids, hot_id, out)
        except BaseException:
            say(f"server log (tail):\n{server_log_tail(state, workers)}")
            raise
        stop_server(state)
        created_total += sum(ph.created for ph in phases)
        non_201 += sum(n for ph in phases for code, n in ph.statuses.items() if code != 201)
        backlog_total += out.get("hot_with_backlog", {}).get("earlier_pledges", 0)
        if "pgbench" in results:
            peak = max(out["spread"]["pledges_per_s"], out["hot"]["pledges_per_s"])
            out["spread_vs_pgbench"] = round(out["spread"]["pledges_per_s"]
                                             / results["pgbench"]["tps"], 3)
            out["peak_vs_pgbench"] = round(peak / results["pgbench"]["tps"], 3)
        results["servers"][label] = out

    if args.bare:
        reqs = Requests(seed, f"{state.prefix}-bare", keyed=not args.no_idempotency_key,
                        client_kind=args.client)
        bare = await measure_bare(state, args, urls, reqs, list(range(1, args.missions + 1)))
        results["bare"] = bare.summary()
        non_201 += sum(n for code, n in bare.statuses.items() if code != 201)
        if "pgbench" in results:
            results["bare"]["vs_pgbench"] = round(bare.rate / results["pgbench"]["tps"], 3)
        for out in results["servers"].values():
            out["spread_vs_bare"] = round(out["spread"]["pledges_per_s"] / bare.rate, 3)

    say("verifying: reconcile.check and pledge rows == 201 responses")
    core = Database(settings.core_url)
    try:
        async with core.read() as conn:
            report = await check(conn)
            rows = int(await conn.scalar(select(func.count()).select_from(pledges)) or 0)
    finally:
        await core.dispose()
    results["verify"] = {"reconcile_ok": report.ok, "pledge_rows": rows,
                         "created_201": created_total, "seeded_backlog": backlog_total,
                         "match": rows == created_total + backlog_total,
                         "non_201": non_201}
    say(f"reconcile: {'all invariants hold' if report.ok else 'FAILED'}; pledge rows {rows}, "
        f"201 responses {created_total} + seeded backlog {backlog_total}")
    if not report.ok:
        print(report.render())
    return results


def print_summary(results: dict[str, Any]) -> None:
    pg = results.get("pgbench")
    print("\n=== pledge benchmark summary ===")
    if pg:
        print(f"pgbench TPC-B ({pg['command']}): {pg['tps']:.0f} tps")
    for label, r in results["servers"].items():
        s, h, p = r["spread"], r["hot"], r["half_peak"]
        print(f"serve --workers {label[1:]}: spread {s['pledges_per_s']:.0f}/s "
              f"(p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms); hot {h['pledges_per_s']:.0f}/s "
              f"(p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms); hot/spread {r['hot_vs_spread']}; "
              f"half-peak {p['target_rate']:.0f}/s -> p50 {p['p50_ms']} ms, "
              f"p99 {p['p99_ms']} ms")
        if "hot_with_backlog" in r:
            d = r["hot_with_backlog"]
            print(f"    hot mission with {d['earlier_pledges']} earlier pledges: "
                  f"{d['pledges_per_s']:.0f}/s (p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms)")
        if pg:
            print(f"    pledges/s / pgbench tps: spread {r['spread_vs_pgbench']}, "
                  f"peak {r['peak_vs_pgbench']}  (target >= 1.0, floor 0.5)")
    bare = results.get("bare")
    if bare:
        print(f"bare endpoint (HTTP, one INSERT, no checks): {bare['pledges_per_s']:.0f}/s "
              f"(p50 {bare['p50_ms']} ms, p99 {bare['p99_ms']} ms)"
              + (f"; / pgbench tps {bare['vs_pgbench']}" if "vs_pgbench" in bare else ""))
        for label, r in results["servers"].items():
            print(f"    serve --workers {label[1:]} spread / bare: {r['spread_vs_bare']}")
    v = results["verify"]
    print(f"verify: reconcile {'ok' if v['reconcile_ok'] else 'FAILED'}, "
          f"pledge rows {v['pledge_rows']} vs 201s {v['created_201']} + seeded "
          f"{v['seeded_backlog']}: "
          f"{'match' if v['match'] else 'MISMATCH'}; answers other than 201: {v['non_201']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="serve --workers values to measure, one server each (default 1 2)")
    p.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    p.add_argument("--fans", type=int, default=2000)
    p.add_argument("--streamers", type=int, default=20)
    p.add_argument("--missions", type=int, default=200, help="missions for the spread phase")
    p.add_argument("--requests", type=int, default=8000, help="cap per closed-loop phase")
    p.add_argument("--seconds", type=float, default=12, help="cap per closed-loop phase")
    p.add_argument("--warmup", type=int, default=400)
    p.add_argument("--paced-seconds", type=float, default=8)
    p.add_argument("--hot-backlog", type=int, default=100_000,
                   help="earlier pledges on the mission of phase (d); 0 skips it")
    p.add_argument("--pgbench-seconds", type=int, default=20, help="0 skips pgbench")
    p.add_argument("--pgbench-scale", type=int, default=8)
    p.add_argument("--no-idempotency-key", action="store_true")
    p.add_argument("--client", choices=["httpx", "raw"], default="httpx",
                   help="load generator: httpx.AsyncClient (default) or a lean asyncio "
                        "HTTP/1.1 client that leaves more of a small machine to the server")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                   help="the benchmark's own event loop (uvloop when installed)")
    p.add_argument("--profile", metavar="DIR", help="add a py-spy sampled phase per server")
    p.add_argument("--profile-seconds", type=float, default=10)
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                   help="a setting of the server under test, e.g. PLEDGE_BATCH_MAX=16 "
                        "(repeatable)")
    p.add_argument("--no-bare", dest="bare", action="store_false",
                   help="skip the bare endpoint (bench/bare_pledge_app.py: HTTP and one INSERT)")
    p.add_argument("--short", action="store_true",
                   help="one server, 2-second phases, small seed and pgbench (about 30 s)")
    args = p.parse_args(argv)
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq or not name:
            p.error(f"--set wants NAME=VALUE, got {item!r}")
        SERVER_SETTINGS[name.removeprefix("MISSIONLINK_")] = value
    if args.short:
        args.workers, args.fans, args.streamers, args.missions = [1], 200, 4, 20
        args.requests, args.seconds, args.warmup, args.paced_seconds = 2000, 2.0, 50, 2.0
        args.hot_backlog, args.pgbench_seconds, args.pgbench_scale = 2000, 3, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    admin_url = os.environ.get("MISSIONLINK_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)
    prefix = f"ml_bench_pledges_{os.getpid()}_{secrets.token_hex(3)}"
    state = State(admin_url=admin_url, prefix=prefix,
                  tmp=Path(tempfile.mkdtemp(prefix="ml-bench-pledges-")))

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    ok = False
    try:
        if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is not None:
            import uvloop

            results = uvloop.run(bench(state, args))
        else:
            results = asyncio.run(bench(state, args))
        print_summary(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        v = results["verify"]
        ok = v["reconcile_ok"] and v["match"] and not v["non_201"]
    finally:
        stop_server(state)
        asyncio.run(drop_databases(state))
        shutil.rmtree(state.tmp, ignore_errors=True)
        say(f"cleaned up (databases dropped: {prefix}_*; server stopped); "
            f"total {time.perf_counter() - T0:.0f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
