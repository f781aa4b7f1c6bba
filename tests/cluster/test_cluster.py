"""The production topology on this machine (``deploy/local/cluster.py``): two API processes
behind nginx, two workers, two least-privilege PostgreSQL roles, Redis as the broker and a
real SMTP server. The full mission flow runs through nginx while one API process and one
worker are killed with SIGKILL and replaced; afterwards every acknowledged request's effect
is there exactly once, every backer got one result email, and ``reconcile`` passes."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller

from missionlink.config import normalize_database_url
from tests.chaos.harness import Cluster, Inbox, cluster_module, smtp_env
from tests.conftest import pg_admin_url, redis_test_url

PLEDGE = 1000
FANS = 4
PLEDGES_PER_FAN = 30
#: The most a fan pledges while the kill and replacement go on (within the top-up).
MAX_PLEDGES_PER_FAN = 1500
TOP_UP = 2_000_000
#: A client's patience with one request (same Idempotency-Key every time).
TRIES = 20


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = cluster_module.free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def cluster(tmp_path: Path, smtp: tuple[Inbox, int]) -> Iterator[Any]:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed under CI=true: the cluster test must run")
        pytest.skip("the cluster test needs nginx (Debian: apt-get install nginx-light)")
    admin = pg_admin_url()
    broker = redis_test_url("the cluster test")
    _, port = smtp
    c = Cluster(
        admin_url=admin, broker_url=broker, name=f"mlc_{uuid.uuid4().hex[:8]}",
        port=cluster_module.free_port(), state_dir=tmp_path / "cluster",
        extra_env={
            **smtp_env(port),
            "MISSIONLINK_RATE_LIMIT_PLEDGES_PER_MINUTE": "0",
            "MISSIONLINK_ARGON2_TIME_COST": "1",
            "MISSIONLINK_ARGON2_MEMORY_KIB": "8192",
        },
        log=lambda line: print(line, flush=True),
    )
    try:
        c.start()
        yield c
    finally:
        codes = c.stop()
        asyncio.run(c.drop_databases())
        print("stopped:", codes)


class Client:
    """A patient client: on a lost connection or a 502/503 it sends the same request again
    with the same Idempotency-Key, as the product's clients are told to."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.keys = itertools.count(1)
        self.acknowledged: list[tuple[str, str, dict[str, Any]]] = []
        self.retries = 0

    async def send(self, method: str, path: str, token: str | None = None,
                   body: dict[str, Any] | None = None, *, key: str | None = None,
                   ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method == "POST" and token:
            headers["Idempotency-Key"] = key or f"k-{uuid.uuid4().hex}"
        last: Exception | httpx.Response | None = None
        for attempt in range(TRIES):
            try:
                r = await self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:
                last = exc
            else:
                if r.status_code not in (502, 503, 504):
                    if r.status_code < 300 and method == "POST":
                        self.acknowledged.append((path, headers.get("Idempotency-Key", ""),
                                                  r.json() if r.content else {}))
                    return r
                last = r
            self.retries += 1
            await asyncio.sleep(min(0.1 * 2 ** attempt, 1.0))
        raise AssertionError(f"{method} {path} never answered: {last!r}")


async def _signup(client: Client, role: str, n: int) -> dict[str, Any]:
    address = f"{role}{n}-{uuid.uuid4().hex[:6]}@example.com"
    r = await client.send("POST", "/api/v1/auth/signup", body={
        "email": address, "password": "correct horse battery", "display_name": f"{role} {n}",
        "role": role})
    assert r.status_code == 201, r.text
    r = await client.send("POST", "/api/v1/auth/login",
                          body={"email": address, "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    return {"id": (await _me(client, token))["id"], "email": address, "token": token}


async def _me(client: Client, token: str) -> dict[str, Any]:
    r = await client.send("GET", "/api/v1/me", token)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def _wait_settled(client: Client, mission_id: int, timeout: float = 90.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        r = await client.send("GET", f"/api/v1/missions/{mission_id}")
        data: dict[str, Any] = r.json()
        if data.get("settlement") == "settled":
            return data
        await asyncio.sleep(0.5)
    raise AssertionError(f"mission {mission_id} was not settled in {timeout:.0f} s: {data}")


async def _db(c: Any, which: str) -> asyncpg.Connection:
    url = normalize_database_url(c.database_url(which)).replace("postgresql+asyncpg://",
                                                                "postgresql://")
    return await asyncpg.connect(url)


async def test_the_mission_flow_survives_killed_processes_behind_nginx(
        cluster: Any, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    async with httpx.AsyncClient(base_url=cluster.url, timeout=15) as http:
        client = Client(http)
        streamer = await _signup(client, "streamer", 0)
        fans = [await _signup(client, "viewer", i) for i in range(FANS)]
        for fan in fans:
            r = await client.send("POST", "/api/v1/wallet/topups", fan["token"],
                                  {"amount": TOP_UP})
            assert r.status_code == 201, r.text

        missions = []
        for title in ("cluster success", "cluster failure"):
            r = await client.send("POST", "/api/v1/missions", fans[0]["token"], {
                "streamer_id": streamer["id"], "title": title, "description": "",
                "amount": PLEDGE, "duration_seconds": 3600})
            assert r.status_code == 201, r.text
            missions.append(r.json())
            r = await client.send("POST", f"/api/v1/missions/{r.json()['id']}/accept",
                                  streamer["token"])
            assert r.status_code == 200, r.text

        # Pledges from every fan to both missions, while api-1 is killed and replaced.
        pledged: Counter[tuple[int, int]] = Counter()
        pledged[(missions[0]["id"], fans[0]["id"])] += PLEDGE
        pledged[(missions[1]["id"], fans[0]["id"])] += PLEDGE
        outage: dict[str, float] = {}
        acknowledged_at: list[float] = []
        stop = asyncio.Event()
        now = asyncio.get_running_loop().time

        async def pledges(fan: dict[str, Any], lane: int) -> None:
            for n in range(lane, MAX_PLEDGES_PER_FAN, 2):
                if stop.is_set() and n >= PLEDGES_PER_FAN:
                    return
                await asyncio.sleep(0.02)
                mission = missions[n % 4 // 2]
                r = await client.send("POST", f"/api/v1/missions/{mission['id']}/pledges",
                                      fan["token"], {"amount": PLEDGE},
                                      key=f"pledge-{fan['id']}-{n}")
                assert r.status_code == 201, r.text
                pledged[(mission["id"], fan["id"])] += PLEDGE
                acknowledged_at.append(now())

        async def kill_api_midway() -> None:
            await asyncio.sleep(0.5)
            outage["from"] = now()
            cluster.kill("api-1")
            await asyncio.to_thread(cluster.wait_healthy, "api-1", 60, restarts=1)
            outage["to"] = now()
            await asyncio.sleep(0.5)
            stop.set()

        await asyncio.gather(kill_api_midway(),
                             *(pledges(fan, lane) for fan in fans for lane in (0, 1)))
        assert any("api-1 unhealthy" in what for _, what in cluster.events), cluster.events
        # Pledges went on being acknowledged while api-1 was down and being replaced.
        assert any(outage["from"] < t < outage["to"] for t in acknowledged_at), outage
        print(f"pledges acknowledged: {len(acknowledged_at)}, of them during the outage: "
              f"{sum(outage['from'] < t < outage['to'] for t in acknowledged_at)}, "
              f"requests sent again: {client.retries}")

        # Results, with a worker killed while it settles and emails.
        r = await client.send("POST", f"/api/v1/missions/{missions[0]['id']}/result",
                              streamer["token"], {"outcome": "success"})
        assert r.status_code == 200, r.text
        cluster.kill("worker-1")
        r = await client.send("POST", f"/api/v1/missions/{missions[1]['id']}/result",
                              streamer["token"], {"outcome": "failure"})
        assert r.status_code == 200, r.text
        settled = [await _wait_settled(client, m["id"]) for m in missions]
        await asyncio.to_thread(cluster.wait_healthy, "worker-1", 60, restarts=1)

        # Money: each fan's wallet shows exactly the acknowledged pledges (no double apply).
        for fan in fans:
            r = await client.send("GET", "/api/v1/wallet", fan["token"])
            spent_on_success = pledged[(missions[0]["id"], fan["id"])]
            assert r.json()["cash_balance"] == TOP_UP - spent_on_success, (fan, r.json())
        total = sum(v for (mid, _), v in pledged.items() if mid == missions[0]["id"])
        assert settled[0]["total_pledged"] == total

    core = await _db(cluster, "core")
    try:
        rows = await core.fetch("SELECT mission_id, user_id, sum(amount) AS s FROM pledges "
                                "GROUP BY mission_id, user_id")
        assert {(r["mission_id"], r["user_id"]): r["s"] for r in rows} == dict(pledged)
        # Every result email went out once, and the outbox is drained.
        for _ in range(120):
            jobs_left = await core.fetchval(
                "SELECT count(*) FROM email_jobs WHERE status <> 'sent'")
            events_left = await core.fetchval(
                "SELECT count(*) FROM outbox WHERE processed_at IS NULL")
            if jobs_left == 0 and events_left == 0:
                break
            await asyncio.sleep(0.5)
        assert (jobs_left, events_left) == (0, 0)
        expected = await core.fetch("SELECT mission_id, user_id, message_id FROM email_jobs")
    finally:
        await core.close()

    backers = {(m, u) for (m, u) in pledged}
    assert {(r["mission_id"], r["user_id"]) for r in expected} >= backers
    ids_by_address: dict[str, set[str]] = {}
    for message in inbox.messages:
        ids_by_address.setdefault(str(message["To"]), set()).add(str(message["Message-ID"]))
    for fan in fans:
        wanted = {r["message_id"] for r in expected if r["user_id"] == fan["id"]}
        got = {mid for address, ids in ids_by_address.items() if fan["email"] in address
               for mid in ids}
        assert got == wanted, (fan["email"], got, wanted)
        assert len(wanted) == len({m for (m, u) in backers if u == fan["id"]})

    report = cluster.reconcile()
    assert report.returncode == 0, report.stdout + report.stderr


async def test_each_role_reaches_only_its_own_database(cluster: Any) -> None:
    for mine, other in (("core", "identity"), ("identity", "core")):
        url = normalize_database_url(cluster.database_url(mine)).replace(
            "postgresql+asyncpg://", "postgresql://")
        other_db = cluster.roles[other]
        head, _, _ = url.rpartition("/")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(f"{head}/{other_db}")
        own = await asyncpg.connect(url)
        try:
            assert await own.fetchval("SELECT current_user") == cluster.roles[mine]
            assert not await own.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        finally:
            await own.close()


async def test_nginx_takes_a_process_out_of_service_and_back(cluster: Any) -> None:
    cluster.processes["api-2"].wanted = False
    cluster.kill("api-2", signal.SIGTERM)
    async with httpx.AsyncClient(base_url=cluster.url, timeout=5) as http:
        for _ in range(100):
            if not cluster.targets[1].healthy:
                break
            await asyncio.sleep(0.1)
        assert not cluster.targets[1].healthy
        upstream = (cluster.state / "nginx" / "upstream.conf").read_text()
        assert f"127.0.0.1:{cluster.processes['api-2'].port} max_fails=1 fail_timeout=2s down" \
            in upstream
        # With one process out, every read still answers. A fresh connection each: nginx
        # reloads its upstream list just now, and its old workers close idle keep-alive
        # connections as they leave (a client reusing one at that moment sees it closed,
        # which a browser answers by sending the GET again).
        answers = Counter([(await http.get("/readyz", headers={"Connection": "close"})
                            ).status_code for _ in range(20)])
        assert answers == Counter({200: 20})
        assert (await http.get("/metrics")).status_code == 404
    cluster.processes["api-2"].wanted = True
    await asyncio.to_thread(cluster.wait_healthy, "api-2", 60)
    assert "down" not in (cluster.state / "nginx" / "upstream.conf").read_text()
