"""Faults against the multi-process topology (two API processes behind nginx, two workers),
on a PostgreSQL and a Redis of the suite's own: a seeded load records what clients were
told while processes, the database or the broker fail; the checkers of ``harness`` then
hold the history against the ledger.

F1 kill -9 an API process at random moments, and at each named phase of a pledge or bet
(parsed; its statement sent, result unread; committed, not answered; answered); F2 kill
-9 a worker at random moments, and exactly after the SMTP server accepted an email or an
event was published to the broker, before either is marked done; F3 PostgreSQL immediate
shutdown under load, then restart; F4 the broker killed and restarted empty; F5 every
connection to PostgreSQL and Redis through a proxy that resets them all or adds latency
now and then; F6 the
workers' clocks two hours ahead (libfaketime): no mission may expire early.

The phase kills are injected by ``tests/chaos/inject/sitecustomize.py``, put on the
``PYTHONPATH`` of the cluster's processes (nothing in ``src`` knows of it): the scenario
arms a phase, the first process to reach it dies there, and the scenario re-arms. Each
phase must be reached at least once, or the scenario fails; what the clients and the
SMTP server and broker saw of each killed request, email or event is then checked too
(``judge``).

``MISSIONLINK_CHAOS_SEEDS`` (default ``1``; ``make chaos`` runs ten) and
``MISSIONLINK_CHAOS_SECONDS`` (default 5, of load under faults) size the run; with
``MISSIONLINK_CHAOS_REPORT=<file>`` each scenario appends its numbers as a JSON line.
``MISSIONLINK_CHAOS_SCENARIOS`` chooses the scenarios: ``all`` (``make chaos``), names
separated by commas, or by default a short sample of four (one F1, one F2 and two of
F3-F6) picked by ``MISSIONLINK_CHAOS_PICK``, which defaults to the checked-out commit, so
every commit runs its own sample, the same one each time, and over commits all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from aiosmtpd.controller import Controller

from tests.chaos import services
from tests.chaos.harness import (
    TEST_ENV,
    Client,
    Cluster,
    History,
    Inbox,
    Op,
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


#: Folder of the phase injector, put first on the processes' PYTHONPATH.
INJECT = Path(__file__).resolve().parent / "inject"


@dataclass(frozen=True)
class Phase:
    """A named phase at which the injector kills a process (see inject/sitecustomize.py)."""

    name: str
    #: ``api``: armed for the API processes; ``worker``: for the workers.
    process: str


PHASES: dict[str, Phase] = {
    "F1-kill-api-parsed": Phase("money-parsed", "api"),
    "F1-kill-api-sent": Phase("money-sent", "api"),
    "F1-kill-api-committed": Phase("money-committed", "api"),
    "F1-kill-api-answered": Phase("money-answered", "api"),
    "F2-kill-worker-email-sent": Phase("email-sent", "worker"),
    "F2-kill-worker-event-published": Phase("event-published", "worker"),
}


def chaos_folder(cluster: Any) -> Path:
    return Path(cluster.state) / "chaos"


def kill_at(phase: Phase) -> Fault:
    """Arm ``phase`` again a random while after each kill there. An API phase is disarmed
    when the load stops (the checks' own requests are not killed); a worker phase stays
    armed until everything is settled, since results are mostly emailed and published
    after the load, while every mission is ended."""

    async def fault(cluster: Any, _: Servers, history: History, rng: random.Random,
                    stop: asyncio.Event) -> None:
        armed = chaos_folder(cluster) / f"{phase.name}.armed"
        while await _pause(rng, stop, 0.3, 1.5):
            if not armed.exists():  # the last arming fired (or none was made yet)
                armed.touch()
        if phase.process == "api":
            armed.unlink(missing_ok=True)

    return fault


def fired(cluster: Any) -> list[dict[str, Any]]:
    """What each process killed at a phase was doing, as it wrote before dying."""
    return [json.loads(path.read_text())
            for path in sorted(chaos_folder(cluster).glob("fired-*.json"))]


def _no_answer(answer: str) -> bool:
    return answer == "reset" or answer in ("500", "502", "503", "504")


def judge(phase: Phase, kills: list[dict[str, Any]], history: History, inbox: Inbox,
          events: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], list[str]]:
    """What the clients, the SMTP server and the broker saw of each killed request, email
    or event: ``(notes for the report, violations)``."""
    problems: list[str] = []
    if not kills:
        return {}, [f"phase {phase.name}: never reached, so nothing was killed there (was "
                    "the wrapped function renamed or its path bypassed?)"]
    if phase.process == "api":
        by_key = {op.key: op for op in history.ops}
        killed: list[tuple[Op, int]] = []  # each killed request, and which send died
        for kill in kills:
            for key in kill.get("keys") or [kill.get("key")]:
                op = by_key.get(str(key))
                # The send that died: the last one begun before the process wrote its
                # record (at ``answered`` the client may have its answer a moment before).
                send = max((i for i, (began, _) in enumerate(op.spans)
                            if began <= kill["at"]), default=None) if op else None
                if op is None or send is None:
                    problems.append(f"{phase.name}: the killed request {key} is not in the "
                                    "history")
                else:
                    killed.append((op, send))
        for op, send in killed:
            blind = sum(_no_answer(a) for a in op.answers)
            final = op.answers[-1]
            if op.outcome not in ("ok", "fail"):
                problems.append(f"{phase.name}: {op.kind} {op.key} still without an answer "
                                f"after {op.sends} sends: {op.answers}")
            if phase.name != "money-answered" and not _no_answer(op.answers[send]):
                problems.append(f"{phase.name}: {op.kind} {op.key} send {send + 1} was "
                                "answered by a process killed before it answered: "
                                f"{op.answers}")
            if phase.name == "money-committed" and op.outcome == "ok" and (
                    not final.endswith("+replayed")):
                problems.append(f"{phase.name}: {op.kind} {op.key} committed before the kill, "
                                f"yet its resend was not a replay: {op.answers}")
            # Killed before any database work and no other send lost: the resend is the
            # first to apply it. (A request in flight on a process killed for another one
            # is lost too, and may have committed: then its resend is a replay.)
            if phase.name == "money-parsed" and blind == 1 and final.endswith("+replayed"):
                problems.append(f"{phase.name}: {op.kind} {op.key} was killed before any "
                                f"database work, yet its resend replayed an effect: "
                                f"{op.answers}")
        notes = {
            "kills": len(kills),
            "killed_requests": dict(Counter(op.kind for op, _ in killed)),
            # What the client got from the send that was killed, and in the end.
            "killed_send_answers": dict(Counter(op.answers[send] for op, send in killed)),
            "final_answers": dict(Counter(op.answers[-1] for op, _ in killed)),
            # Of those whose other sends were all answered (not lost to another kill).
            "final_answers_killed_once": dict(Counter(
                op.answers[-1] for op, _ in killed
                if sum(_no_answer(a) for a in op.answers) == 1)),
        }
        return notes, problems
    if phase.name == "email-sent":
        copies = Counter(str(m["Message-ID"]) for m in inbox.messages)
        for kill in kills:
            if copies[kill["message_id"]] < 2:
                problems.append(f"{phase.name}: email {kill['message_id']} reached the SMTP "
                                f"server {copies[kill['message_id']]} time(s); the worker was "
                                "killed before marking it sent, so it must go again")
        return {"kills": len(kills), "emails_sent_again": sum(
            copies[k["message_id"]] - 1 for k in kills)}, problems
    # event-published: the next worker handles the event again and publishes it again,
    # as the same event (same type, ids and names; only ``at`` and the mission's card,
    # which shows the totals of that moment, may differ), so an overlay can tell a repeat
    # (a pledge's server-sent event id is ``p<pledge id>``).
    def same(channel: str, event: dict[str, Any]) -> tuple[str, str]:
        return channel, json.dumps({k: v for k, v in event.items()
                                    if k not in ("at", "mission")}, sort_keys=True)

    seen = Counter(same(channel, event) for channel, event in events)
    for kill in kills:
        n = seen[same(kill["channel"], kill["event"])]
        if n < 2:
            problems.append(f"{phase.name}: event {kill['event'].get('type')} of mission "
                            f"{kill['event'].get('mission_id')} published {n} time(s); the "
                            "worker was killed before marking it processed, so it must go again")
    return {"kills": len(kills), "events_published_again": sum(
        max(0, seen[same(k["channel"], k["event"])] - 1) for k in kills)}, problems


async def listen(url: str, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Every event published to a channel's overlays, as ``(channel, event)``."""
    client = redis.asyncio.from_url(url)
    pubsub = client.pubsub()
    try:
        await pubsub.psubscribe("missionlink:channel:*")
        async for item in pubsub.listen():
            if item.get("type") == "pmessage":
                channel = item["channel"].decode().removeprefix("missionlink:")
                events.append((channel, json.loads(item["data"])))
    finally:
        await pubsub.aclose()
        await client.aclose()


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
    **{name: kill_at(phase) for name, phase in PHASES.items()},
}


def _commit_pick() -> int:
    """The checked-out commit as a number (0 outside a git checkout)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10, check=True)
        return int(head.stdout.strip()[:8], 16)
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def sample(names: list[str], pick: int) -> list[str]:
    """One F1 scenario, one F2 and two of the others, chosen by ``pick``."""
    rng = random.Random(pick)
    f1 = [n for n in names if n.startswith("F1-")]
    f2 = [n for n in names if n.startswith("F2-")]
    rest = [n for n in names if n not in f1 and n not in f2]
    chosen = {rng.choice(f1), rng.choice(f2), *rng.sample(rest, 2)}
    return [n for n in names if n in chosen]


def chosen_scenarios() -> list[str]:
    names = list(SCENARIOS)
    wanted = os.environ.get("MISSIONLINK_CHAOS_SCENARIOS", "").strip()
    if wanted == "all":
        return names
    if wanted:
        listed = [n.strip() for n in wanted.split(",") if n.strip()]
        unknown = sorted(set(listed) - set(names))
        if unknown:
            raise ValueError(f"MISSIONLINK_CHAOS_SCENARIOS names no scenario {unknown}; "
                             f"known: {', '.join(names)}")
        return listed
    pick = os.environ.get("MISSIONLINK_CHAOS_PICK", "").strip()
    return sample(names, int(pick) if pick else _commit_pick())


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
    state_dir = servers.folder / "clusters" / f"{name}-{seed}"
    phase = PHASES.get(name)
    extra_env = {**TEST_ENV, **smtp_env(servers.smtp_port)}
    worker_env = dict(WORKER_ENV.get(name, {}))
    if phase is not None:
        (state_dir / "chaos").mkdir(parents=True, exist_ok=True)
        inject = {"PYTHONPATH": os.pathsep.join(
                      [str(INJECT), *filter(None, [os.environ.get("PYTHONPATH")])]),
                  "MISSIONLINK_CHAOS_KILL_AT": phase.name,
                  "MISSIONLINK_CHAOS_DIR": str(state_dir / "chaos")}
        (extra_env if phase.process == "api" else worker_env).update(inject)
    cluster = Cluster(
        admin_url=servers.postgres.admin_url, broker_url=broker_url, service_url=service_url,
        name=f"chaos_{uuid.uuid4().hex[:8]}", port=free_port(), state_dir=state_dir,
        extra_env=extra_env, worker_env=worker_env,
        log=lambda line: print(line, flush=True))
    events: list[tuple[str, dict[str, Any]]] = []
    listener = (asyncio.create_task(listen(servers.redis.url, events))
                if phase is not None and phase.name == "event-published" else None)
    notes: dict[str, Any] = {}
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
            if phase is not None:
                (chaos_folder(cluster) / f"{phase.name}.armed").unlink(missing_ok=True)
                await asyncio.sleep(0.5)  # the last events reach the listener
                kills = fired(cluster)
                for kill in kills:
                    history.fault(f"kill -9 {kill['pid']} at {phase.name}")
                notes, found = judge(phase, kills, history, servers.inbox, events)
                problems += found
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
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
        **({"phase": phase.name, "phase_notes": notes} if phase is not None else {}),
    }
    print(json.dumps(outcome), flush=True)
    if REPORT:
        with open(REPORT, "a") as out:
            out.write(json.dumps({**outcome, "problems": problems[:20]}) + "\n")
    assert history.faults, "no fault was injected"
    assert not problems, "\n".join(problems[:30])
    return outcome


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", chosen_scenarios())
def test_no_acknowledged_request_is_lost_or_applied_twice(
        name: str, seed: int, servers: Servers) -> None:
    if name in WORKER_ENV and not Path(LIBFAKETIME).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("libfaketime is not installed under CI=true (Debian: faketime)")
        pytest.skip("needs libfaketime (Debian: apt-get install faketime)")
    asyncio.run(run_scenario(name, seed, servers, SCENARIOS[name]))
