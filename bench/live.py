"""Live-stream fan-out benchmark: how soon every viewer sees a new pledge, and at what memory.

What it does, in one run (under a minute with the defaults):

1. creates its own databases through ``MISSIONLINK_BENCH_POSTGRES_URL`` (default
   ``postgresql://postgres@127.0.0.1/postgres``), migrates them, and uses Redis at
   ``MISSIONLINK_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/14``) as the broker;
2. starts two ``missionlink serve`` processes (one worker process each) and one
   ``missionlink worker`` (the outbox relay), as production runs them; signs a streamer and
   two viewers up through the API and proposes a mission;
3. opens ``--clients`` server-sent-events connections (default 2,000), spread evenly over
   the two processes and alternating between the mission's stream and its channel's stream,
   and waits until each has its snapshot;
4. records each server's RSS with every stream open, then posts ``--pledges`` pledges
   (default 1), one at a time, and measures for every client the time from just before the
   ``POST`` until the pledge's event arrived on its socket: the pledge's commit, the outbox
   relay, Redis, and the fan-out in both processes. Reports p50/p99/max, the servers' RSS,
   each against its goal (p99 ≤ 0.5 s; under 200 MB per process) as a ratio, and the
   client's own CPU time while it waited (so a saturated generator shows);
5. stops every process it started and drops its databases (also on failure or Ctrl-C).

``--short`` opens 200 streams, so CI keeps the script working in seconds. The exit status is
1 when the run itself broke: a stream was dropped, or a client never saw a pledge within
``--timeout`` (a liveness bound, far above any latency goal), never because of a figure.

The clients are asyncio protocols on uvloop that only look for the pledge's bytes, so the
generator costs a few microseconds a client. ``ulimit -n`` is raised to the hard limit; each
client needs one descriptor here and one in a server.

    MISSIONLINK_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1/postgres \\
    MISSIONLINK_BENCH_REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/live.py [--short] [--clients 10000] [--pledges 3]

Results: bench/README.md, "Live streams".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from benchkit.databases import (  # type: ignore[import-not-found]
    admin_exec,
    admin_url,
    db_url,
    drop_databases,
    redis_url,
)
from benchkit.processes import (  # type: ignore[import-not-found]
    clean_env,
    free_port,
    rss_mib,
    spawn_group,
    stop_group,
)
from benchkit.run import Broken, say, sigterm_unwinds  # type: ignore[import-not-found]
from benchkit.stats import percentile as nearest_rank  # type: ignore[import-not-found]

PASSWORD = "bench-password-1"  # a throwaway account on a throwaway database
CONNECT_CONCURRENCY = 64  # per server: a connection storm would only measure the backlog
START_TIMEOUT = 60.0
#: The goals the figures are read against (docs: bench/README.md, "Live streams").
GOAL_P99_SECONDS = 0.5
GOAL_RSS_MIB = 200e6 / 2**20  # 200 MB


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < needed:
        sys.exit(f"live: {needed} descriptors needed, the hard limit is {soft}; raise ulimit -n")


def percentile(values: list[float], q: float) -> float:
    """Nearest rank by ``round`` (not ``ceil``), as the figures in bench/README.md were taken."""
    return float(nearest_rank(values, q, round))


class Viewer(asyncio.Protocol):
    """One SSE client: sends its request, then only watches for a marker in what arrives."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.snapshot = asyncio.get_running_loop().create_future()
        self.marker: bytes | None = None
        self.seen_at: float | None = None
        self.on_seen: Callable[[], None] = lambda: None
        self.tail = b""
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        # A marker may be split across two reads: look at the end of the last one as well.
        chunk = self.tail + data
        self.tail = data[-64:]
        if not self.snapshot.done():
            if b'"type":"snapshot"' in chunk:
                self.snapshot.set_result(None)
            elif b"HTTP/1.1 " in chunk and b" 200 " not in chunk.split(b"\r\n", 1)[0]:
                self.snapshot.set_exception(RuntimeError(chunk[:200].decode(errors="replace")))
            return
        if self.marker is not None and self.seen_at is None and self.marker in chunk:
            self.seen_at = now
            self.on_seen()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.snapshot.done():
            self.snapshot.set_exception(ConnectionError("closed before the snapshot"))


class Countdown:
    """Set ``done`` once every client has seen the pledge."""

    def __init__(self, clients: int) -> None:
        self.left = clients
        self.done = asyncio.Event()

    def tick(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done.set()


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="ml-bench-live-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.admin = admin_url()
        self.redis = redis_url()
        suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.databases = {"core": f"ml_bench_live_{suffix}_core",
                          "identity": f"ml_bench_live_{suffix}_identity"}

    def env(self) -> dict[str, str]:
        env = clean_env()
        env.update({
            "MISSIONLINK_DATA_DIR": str(self.tmp / "var"),
            "MISSIONLINK_DATABASE_URL": db_url(self.admin, self.databases["core"]),
            "MISSIONLINK_IDENTITY_DATABASE_URL": db_url(self.admin, self.databases["identity"]),
            "MISSIONLINK_BROKER_URL": self.redis,
            "MISSIONLINK_SERVE_WORKER": "0",
            "MISSIONLINK_METRICS_PORT": "0",
            "MISSIONLINK_ARGON2_TIME_COST": "1",
            "MISSIONLINK_ARGON2_MEMORY_KIB": "8",
            # Every client comes from 127.0.0.1; the per-process cap stays as shipped.
            "MISSIONLINK_SSE_MAX_PER_ADDRESS": "0",
            "MISSIONLINK_RATE_LIMIT_SIGNUPS_PER_MINUTE": "0",
            "MISSIONLINK_RATE_LIMIT_PLEDGES_PER_MINUTE": "0",
            "NO_COLOR": "1",
        })
        return env

    def spawn(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        proc = spawn_group([sys.executable, "-m", "missionlink.cli", *command], self.env(),
                           self.tmp / f"{name}.log")
        self.procs.append(proc)
        return proc

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in self.tmp.glob("*.log"))

    async def wait_ready(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=url, timeout=2) as http:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"a server exited:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{url} did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        for proc in self.procs:
            stop_group(proc)


async def account(http: httpx.AsyncClient, role: str) -> tuple[int, dict[str, str]]:
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    r = await http.post("/api/v1/auth/signup", json={
        "email": email, "password": PASSWORD, "display_name": f"bench {role}", "role": role})
    r.raise_for_status()
    user_id = int(r.json()["id"])
    r = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    return user_id, {"Authorization": f"Bearer {r.json()['access_token']}"}


async def open_viewers(port: int, paths: list[str]) -> list[Viewer]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(path: str) -> Viewer:
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   "Accept: text/event-stream\r\n\r\n").encode()
        async with gate:
            _, viewer = await loop.create_connection(lambda: Viewer(request), "127.0.0.1", port)
            await asyncio.wait_for(viewer.snapshot, 60)
        return viewer

    return list(await asyncio.gather(*(one(p) for p in paths)))


async def bench(run: Run) -> dict[str, Any]:
    args = run.args
    (run.tmp / "var").mkdir()
    for name in run.databases.values():
        await admin_exec(run.admin, f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "missionlink.cli", "migrate"],
                            env=run.env(), check=True, capture_output=True)
    ports = [free_port(), free_port()]
    servers = [run.spawn(f"serve-{port}", "serve", "--host", "127.0.0.1", "--port", str(port))
               for port in ports]
    run.spawn("worker", "worker")
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    await asyncio.gather(*(run.wait_ready(u, p) for u, p in zip(urls, servers, strict=True)))

    async with httpx.AsyncClient(base_url=urls[0], timeout=30) as api:
        streamer_id, _ = await account(api, "streamer")
        _, creator = await account(api, "viewer")
        _, backer = await account(api, "viewer")
        for who in (creator, backer):
            (await api.post("/api/v1/wallet/topups", json={"amount": 1_000_000},
                            headers=who)).raise_for_status()
        r = await api.post("/api/v1/missions", headers=creator, json={
            "streamer_id": streamer_id, "title": "벤치마크 미션", "amount": 10_000,
            "duration_seconds": 3600})
        r.raise_for_status()
        mission_id = int(r.json()["id"])
        await asyncio.sleep(1)  # the relay's first events land before anyone watches
        baseline = [rss_mib(p.pid) for p in servers]

        stream_paths = [f"/api/v1/missions/{mission_id}/events",
                        f"/api/v1/channels/{streamer_id}/events"]
        per_server = [args.clients // 2, args.clients - args.clients // 2]
        say(f"opening {args.clients} streams ({per_server[0]} + {per_server[1]})")
        started = time.monotonic()
        groups = await asyncio.gather(*(
            open_viewers(port, [stream_paths[i % 2] for i in range(count)])
            for port, count in zip(ports, per_server, strict=True)))
        viewers = [v for group in groups for v in group]
        opened_in = time.monotonic() - started
        await asyncio.sleep(2)  # let allocations settle before reading RSS
        with_streams = [rss_mib(p.pid) for p in servers]
        say(f"open in {opened_in:.1f} s; RSS {baseline} -> {with_streams} MiB")

        rounds: list[dict[str, float]] = []
        for n in range(args.pledges):
            amount = 1_000 + n
            marker = f'"amount":{amount},'.encode()
            countdown = Countdown(len(viewers))
            for v in viewers:
                v.marker, v.seen_at, v.on_seen = marker, None, countdown.tick
            cpu0 = time.process_time()
            t0 = time.monotonic()
            r = await api.post(f"/api/v1/missions/{mission_id}/pledges", headers=backer,
                               json={"amount": amount})
            r.raise_for_status()
            answered = time.monotonic() - t0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(countdown.done.wait(),
                                       max(0.0, t0 + args.timeout - time.monotonic()))
            cpu = time.process_time() - cpu0
            waits = [v.seen_at - t0 for v in viewers if v.seen_at is not None]
            missing = len(viewers) - len(waits)
            if not waits:
                raise RuntimeError(f"no client saw pledge {n + 1}:\n{run.log_tail()}")
            rounds.append({"p50": percentile(waits, 0.5), "p99": percentile(waits, 0.99),
                           "max": max(waits), "missing": missing, "answered": answered,
                           "first": min(waits), "client_cpu": cpu})
            say(f"pledge {n + 1}: 201 in {answered * 1000:.0f} ms; seen by {len(waits)} "
                f"(missing {missing}): first {min(waits) * 1000:.0f} ms, "
                f"p50 {rounds[-1]['p50'] * 1000:.0f} ms, p99 {rounds[-1]['p99'] * 1000:.0f} ms, "
                f"max {max(waits) * 1000:.0f} ms; client CPU {cpu * 1000:.0f} ms")
            await asyncio.sleep(0.5)
        after = [rss_mib(p.pid) for p in servers]
        lost = sum(v.lost for v in viewers)
        for v in viewers:
            if v.transport is not None:
                v.transport.close()
    return {"clients": args.clients, "opened_in": opened_in, "baseline_mib": baseline,
            "with_streams_mib": with_streams, "after_mib": after, "rounds": rounds,
            "lost": lost}


def broken(result: dict[str, Any]) -> list[str]:
    problems = []
    if result["lost"]:
        problems.append(f"{result['lost']} streams were dropped")
    for n, r in enumerate(result["rounds"], 1):
        if r["missing"]:
            problems.append(f"pledge {n}: {r['missing']:.0f} clients never saw it")
    return problems


def report(result: dict[str, Any]) -> None:
    per_server = result["clients"] / 2
    say("")
    say(f"clients: {result['clients']} over 2 processes, {result['lost']} dropped")
    for i, (base, full, after) in enumerate(zip(result["baseline_mib"],
                                                result["with_streams_mib"],
                                                result["after_mib"], strict=True)):
        per_stream = (full - base) * 1024 / per_server
        say(f"server {i + 1}: RSS {base:.1f} MiB idle -> {full:.1f} MiB with {per_server:.0f} "
            f"streams ({per_stream:.1f} KiB a stream; {full / GOAL_RSS_MIB:.2f} of "
            f"{GOAL_RSS_MIB:.1f} MiB), {after:.1f} MiB after the pledges")
    p50 = statistics.median(r["p50"] for r in result["rounds"])
    p99 = max(r["p99"] for r in result["rounds"])
    say(f"time to see a pledge: p50 {p50 * 1000:.0f} ms, worst p99 {p99 * 1000:.0f} ms "
        f"({p99 / GOAL_P99_SECONDS:.2f} of {GOAL_P99_SECONDS} s) "
        f"over {len(result['rounds'])} pledge(s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--pledges", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for every client to see a pledge")
    parser.add_argument("--short", action="store_true", help="200 clients, one pledge")
    args = parser.parse_args()
    if args.short:
        args.clients, args.pledges = 200, 1
    raise_fd_limit(args.clients + 256)
    try:
        import uvloop
    except ImportError:
        uvloop = None
    run = Run(args)
    try:
        with sigterm_unwinds():
            result = (uvloop.run if uvloop is not None else asyncio.run)(bench(run))
        report(result)
        problems = broken(result)
        if problems:
            raise Broken("; ".join(problems))
        return 0
    except Broken as exc:
        print(f"bench: BROKEN RUN: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        run.stop()
        asyncio.run(drop_databases(run.admin, list(run.databases.values())))
        import shutil

        shutil.rmtree(run.tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
