"""Migrations match the tables in code; the CLI and `serve` work as real processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from missionlink.bootstrap import Container
from missionlink.migrations.runner import check_all
from tests.helpers import make_user

MISSIONLINK = [sys.executable, "-m", "missionlink.cli"]


async def test_migrations_have_no_drift_from_the_tables(container: Container) -> None:
    await asyncio.to_thread(check_all, container.settings)


async def test_the_journal_is_append_only(container: Container) -> None:
    await make_user(container)
    for sql in ("UPDATE transfers SET amount = amount + 1", "DELETE FROM transfers"):
        with pytest.raises(Exception, match="append-only"):
            async with container.core_db.begin() as conn:
                await conn.execute(text(sql))


async def test_wallets_cannot_go_negative_even_bypassing_the_code(container: Container) -> None:
    user = await make_user(container)
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        async with container.core_db.begin() as conn:
            await conn.execute(text(f"UPDATE wallets SET cash_balance = -1 WHERE user_id = {user.id}"))


def _env(container: Container) -> dict[str, str]:
    s = container.settings
    return {
        **os.environ,
        "MISSIONLINK_DATA_DIR": str(s.data_dir),
        "MISSIONLINK_DATABASE_URL": s.database_url,
        "MISSIONLINK_IDENTITY_DATABASE_URL": s.identity_database_url,
    }


async def test_reconcile_command_exits_zero_then_one_on_a_broken_ledger(
    container: Container,
) -> None:
    user = await make_user(container)
    ok = subprocess.run([*MISSIONLINK, "reconcile"], env=_env(container), capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all invariants hold" in ok.stdout
    async with container.core_db.begin() as conn:
        await conn.execute(text(f"UPDATE wallets SET cash_balance = 5 WHERE user_id = {user.id}"))
    bad = subprocess.run([*MISSIONLINK, "reconcile"], env=_env(container), capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1 and f"user:{user.id}:cash" in bad.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "MISSIONLINK_DATA_DIR": str(tmp_path)}
    r = subprocess.run([*MISSIONLINK, "serve", "--workers", "2"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "PostgreSQL" in r.stderr


def test_serve_refuses_several_workers_without_a_broker(tmp_path: Path) -> None:
    """Nothing listens on the database URL: the refusal comes before any connection."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
    url = "postgresql://missionlink:x@127.0.0.1:9/missionlink"
    env.update({"MISSIONLINK_DATA_DIR": str(tmp_path), "MISSIONLINK_DATABASE_URL": url,
                "MISSIONLINK_IDENTITY_DATABASE_URL": url, "MISSIONLINK_BROKER_URL": ""})
    r = subprocess.run([*MISSIONLINK, "serve", "--workers", "2"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "BROKER_URL" in r.stderr, r.stderr


def test_make_run_default_serves_health_and_docs(tmp_path: Path) -> None:
    """`missionlink serve` on the embedded default migrates itself and answers."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MISSIONLINK_PUBLIC_URL"}
    env["MISSIONLINK_DATA_DIR"] = str(tmp_path / "var")
    proc = subprocess.Popen([*MISSIONLINK, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90  # a first start migrates both databases
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["paths"]
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
        assert (tmp_path / "var" / "core.sqlite3").exists()
        assert (tmp_path / "var" / "identity.sqlite3").exists()
        # With PUBLIC_URL unset, absolute links point where this server listens.
        base = f"http://127.0.0.1:{port}"
        account = {"email": "streamer@example.com", "password": "correct horse battery"}
        r = httpx.post(f"{base}/api/v1/auth/signup", json={
            **account, "display_name": "라면왕", "role": "streamer", "language": "ko"})
        assert r.status_code == 201, r.text
        token = httpx.post(f"{base}/api/v1/auth/login", json=account).json()["access_token"]
        r = httpx.get(f"{base}/api/v1/streamers/me/overlay",
                      headers={"Authorization": f"Bearer {token}"})
        assert r.json()["url"].startswith(f"{base}/overlay/"), r.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
