"""Faults against the multi-process topology (two API processes behind nginx, two workers),
on a PostgreSQL and a Redis of the suite's own: a seeded load records what clients were
told while processes, the database or the broker fail; the checkers of ``harness`` then
hold the history against the ledger.

F1 kill -9 an API process at random moments; F2 kill -9 a worker at random moments (an
email sent or an event published but not yet marked done); F3 PostgreSQL immediate
shutdown under load, then restart; F4 the broker killed and restarted empty; F5 every
connection to PostgreSQL and Redis through a proxy that resets them all or adds latency
now and then; F6 the
workers' clocks two hours ahead (libfaketime): no mission may expire early.

``MISSIONLINK_CHAOS_SEEDS`` (default ``1``; ``make chaos`` runs ten) and
``MISSIONLINK_CHAOS_SECONDS`` (default 5, of load under faults) size the run; with
``MISSIONLINK_CHAOS_REPORT=<file>`` each scenario appends its numbers as a JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.chaos import services
from tests.chaos.harness import (
    TEST_ENV,
    Client,
    Cluster,
    History,
    Inbox,
    World,
    check,
    core_connection,
    drive,
    finish,
    free_port,
    journal_snapshot,
    sign_up,
    smtp_env,
    wait_quiet,
)
from tests.chaos.proxy import FaultProxy

SEEDS = [int(s) for s in os.environ.get("MISSIONLINK_CHAOS_SEEDS", "1").split(",") if s]
SECONDS = float(os.environ.get("MISSIONLINK_CHAOS_SECONDS", "5"))
REPORT = os.environ.get("MISSIONLINK_CHAOS_REPORT", "")


@dataclass
class Servers:
    postgres: services.PrivatePostgres
    redis: services.PrivateRedis
    inbox: Inbox
    smtp_port: int
    folder: Path
    #: F5's proxies in front of PostgreSQL and Redis, while its scenario runs.
    proxies: list[FaultProxy] = field(default_factory=list)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    why = services.available()
    if why or (shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists()):
        reason = why or "nginx is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the chaos suite must run under CI=true: {reason}")
        pytest.skip(f"the chaos suite needs its own servers: {reason}")
    # Not under pytest's tmp_path: its folders are closed to the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="missionlink-chaos-"))
    folder.chmod(0o755)
    pg = services.PrivatePostgres(folder / "postgres", free_port())
    rd = services.PrivateRedis(folder / "redis", free_port())
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    try:
        pg.create()
        pg.start()
        rd.start()
        controller.start()
        yield Servers(pg, rd, inbox, smtp_port, folder)
    finally:
        controller.stop()
        rd.destroy()
        pg.destroy()
        shutil.rmtree(folder, ignore_errors=True)


Fault = Callable[[Any, Servers, History, random.Random, asyncio.Event], Awaitable[None]]


async def _pause(rng: random.Random, stop: asyncio.Event, low: float, high: float) -> bool:
    """Sleep a random while; False once the load has stopped."""
    try:
        await asyncio.wait_for(stop.wait(), rng.uniform(low, high))
    except TimeoutError:
        return True
    return False


def kill_one_of(*names: str) -> Fault:
    """kill -9 one of ``names`` at random moments (the supervisor replaces it)."""

    async def fault(cluster: Any, _: Servers, history: History, rng: random.Random,
                    stop: asyncio.Event) -> None:
        while await _pause(rng, stop, 0.3, 2.0):
            name = rng.choice(names)
            history.fault(f"kill -9 {name}")
            await asyncio.to_thread(cluster.kill, name)

    return fault


async def crash_postgres(_: Any, servers: Servers, history: History, rng: random.Random,
                         stop: asyncio.Event) -> None:
    while await _pause(rng, stop, 0.5, 2.5):
        history.fault("postgres immediate shutdown")
        await asyncio.to_thread(servers.postgres.stop, "immediate")
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        await asyncio.to_thread(servers.postgres.start)


async def restart_broker(_: Any, servers: Servers, history: History, rng: random.Random,
                         stop: asyncio.Event) -> None:
    while await _pause(rng, stop, 0.5, 2.5):
        history.fault("broker killed and restarted empty")
        await asyncio.to_thread(servers.redis.kill)
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        await asyncio.to_thread(servers.redis.start)


async def flaky_network(_: Any, servers: Servers, history: History, rng: random.Random,
                        stop: asyncio.Event) -> None:
    """Every process reaches PostgreSQL and Redis through a proxy that now and then cuts
    every connection (RST) or holds what it forwards for tens of milliseconds."""
    while await _pause(rng, stop, 0.3, 2.0):
        if rng.random() < 0.5:
            history.fault("connections to PostgreSQL and Redis reset")
            for proxy in servers.proxies:
                proxy.reset_all()
        else:
            delay = rng.uniform(0.02, 0.2)
            history.fault(f"{delay * 1000:.0f} ms latency to PostgreSQL and Redis")
            for proxy in servers.proxies:
                proxy.delay = delay
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            for proxy in servers.proxies:
                proxy.delay = 0.0


#: The workers' clock runs two hours ahead (libfaketime): past every acceptance time and
#: deadline of the run's missions, were it trusted.
SKEW = "+7200s"
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


async def skewed_worker_clock(cluster: Any, _: Servers, history: History,
                              rng: random.Random, stop: asyncio.Event) -> None:
    history.fault(f"worker clocks {SKEW}")
    # Workers restarted now and then start with the skew again, as a bad host would.
    while await _pause(rng, stop, 2.0, 5.0):
        name = rng.choice(["worker-1", "worker-2"])
        history.fault(f"kill -9 {name} (restarts skewed)")
        await asyncio.to_thread(cluster.kill, name)


#: Environment of each scenario's workers.
WORKER_ENV: dict[str, dict[str, str]] = {
    "F6-worker-clock-skew": {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": SKEW,
                             "FAKETIME_DONT_FAKE_MONOTONIC": "1"},
}

SCENARIOS: dict[str, Fault] = {
    "F1-kill-api": kill_one_of("api-1", "api-2"),
    "F2-kill-worker": kill_one_of("worker-1", "worker-2"),
    "F3-postgres-crash": crash_postgres,
    "F4-broker-restart": restart_broker,
    "F5-flaky-network": flaky_network,
    "F6-worker-clock-skew": skewed_worker_clock,
}


async def run_scenario(name: str, seed: int, servers: Servers, fault: Fault) -> dict[str, Any]:
    started = time.monotonic()
    history = History()
    servers.inbox.messages.clear()
    service_url, broker_url = None, servers.redis.url
    if fault is flaky_network:
        servers.proxies = [FaultProxy(servers.postgres.port), FaultProxy(servers.redis.port)]
        for proxy in servers.proxies:
            await proxy.start()
        service_url = f"postgresql://postgres@127.0.0.1:{servers.proxies[0].port}/postgres"
        broker_url = f"redis://127.0.0.1:{servers.proxies[1].port}/0"
    cluster = Cluster(
        admin_url=servers.postgres.admin_url, broker_url=broker_url, service_url=service_url,
        name=f"chaos_{uuid.uuid4().hex[:8]}", port=free_port(),
        state_dir=servers.folder / "clusters" / f"{name}-{seed}",
        extra_env={**TEST_ENV, **smtp_env(servers.smtp_port)},
        worker_env=WORKER_ENV.get(name, {}),
        log=lambda line: print(line, flush=True))
    await asyncio.to_thread(cluster.start)
    try:
        async with httpx.AsyncClient(base_url=cluster.url, timeout=10) as http:
            client = Client(http, history)
            streamers = [await sign_up(client, "streamer", f"s{i}") for i in range(2)]
            fans = [await sign_up(client, "viewer", f"f{i}") for i in range(4)]
            for fan in fans:
                op = await client.post("topup", fan.id, "/api/v1/wallet/topups", fan.token,
                                       {"amount": 200_000})
                assert op.outcome == "ok", (op.status, op.body)
            world = World(streamers, fans)
            stop = asyncio.Event()
            injector = asyncio.create_task(fault(cluster, servers, history,
                                                 random.Random(seed), stop))
            try:
                await drive(client, world, seed=seed, seconds=SECONDS)
            finally:
                stop.set()
                await injector
            unknown = history.counts()["unknown"]
            await client.retry_unknown()
            conn = await core_connection(cluster)
            try:
                journal = await journal_snapshot(conn)
                await finish(client, world)
                await wait_quiet(conn)

                async def reconcile() -> tuple[int, str]:
                    result = await asyncio.to_thread(cluster.reconcile)
                    return result.returncode, result.stdout + result.stderr

                problems = await check(conn, history, servers.inbox, reconcile, journal)
            finally:
                await conn.close()
    finally:
        await asyncio.to_thread(cluster.stop)
        await cluster.drop_databases()
        for proxy in servers.proxies:
            await proxy.stop()
        servers.proxies = []
    outcome = {
        "scenario": name, "seed": seed, "operations": len(history.ops),
        "outcomes": dict(history.counts()), "sends": sum(op.sends for op in history.ops),
        "unknown_then_retried": unknown, "faults": len(history.faults),
        "violations": len(problems),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(outcome), flush=True)
    if REPORT:
        with open(REPORT, "a") as out:
            out.write(json.dumps({**outcome, "problems": problems[:20]}) + "\n")
    assert history.faults, "no fault was injected"
    assert not problems, "\n".join(problems[:30])
    return outcome


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_acknowledged_request_is_lost_or_applied_twice(
        name: str, seed: int, servers: Servers) -> None:
    if name in WORKER_ENV and not Path(LIBFAKETIME).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("libfaketime is not installed under CI=true (Debian: faketime)")
        pytest.skip("needs libfaketime (Debian: apt-get install faketime)")
    asyncio.run(run_scenario(name, seed, servers, SCENARIOS[name]))
