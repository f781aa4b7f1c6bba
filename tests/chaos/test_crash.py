"""Kill -9 the API mid-traffic, restart it, retry with the same Idempotency-Keys:
every acknowledged pledge is there, none is applied twice, the ledger balances."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from sqlalchemy import func, select

from missionlink.adapters.db.core_tables import pledges
from missionlink.bootstrap import Container
from tests.helpers import assert_ledger_ok, make_user, propose, settle_all

PLEDGES = 400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(container: Container, port: int) -> subprocess.Popen[bytes]:
    s = container.settings
    env = {
        **os.environ,
        "MISSIONLINK_DATA_DIR": str(s.data_dir),
        "MISSIONLINK_DATABASE_URL": s.database_url,
        "MISSIONLINK_IDENTITY_DATABASE_URL": s.identity_database_url,
        "MISSIONLINK_RATE_LIMIT_PLEDGES_PER_MINUTE": "0",
        "MISSIONLINK_SERVE_WORKER": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "missionlink.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("serve did not start")


async def test_a_killed_api_loses_no_acknowledged_pledge_and_applies_none_twice(
    container: Container,
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    port = _free_port()
    proc = _start(container, port)
    base = f"http://127.0.0.1:{port}"
    acknowledged: set[str] = set()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            r = await client.post("/api/v1/wallet/topups", json={"amount": 2_000_000},
                                  headers=fan.headers)
            assert r.status_code == 201
            m = await propose(client, fan, streamer, amount=1000, duration=3600, title="crash")

            async def pledge(key: str) -> None:
                try:
                    resp = await client.post(
                        f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                        headers={**fan.headers, "Idempotency-Key": key})
                except httpx.TransportError:
                    return
                if resp.status_code == 201:
                    acknowledged.add(key)

            keys = [f"crash-{i}" for i in range(PLEDGES)]
            tasks = [asyncio.create_task(pledge(k)) for k in keys]
            deadline = time.monotonic() + 20
            while len(acknowledged) < 20 and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            await asyncio.gather(*tasks)
        assert len(acknowledged) < PLEDGES, "the kill came too late to test anything"
        proc = _start(container, port)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for key in keys:
                resp = await client.post(
                    f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                    headers={**fan.headers, "Idempotency-Key": key})
                assert resp.status_code == 201, resp.text
    finally:
        proc.kill()
        proc.wait(timeout=10)
    async with container.core_db.read() as conn:
        count = await conn.scalar(
            select(func.count()).where(pledges.c.mission_id == m["id"]))
    assert count == PLEDGES + 1  # the mission's first pledge plus one per key
    await settle_all(container)
    await assert_ledger_ok(container)
