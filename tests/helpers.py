"""Test data builders that go through the real databases and use cases."""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog
from sqlalchemy import insert

from missionlink.adapters.db.identity_tables import users
from missionlink.bootstrap import Container
from missionlink.observability import logging as ml_logging
from missionlink.services.members import open_member
from missionlink.services.reconcile import check
from missionlink.workers.runner import Worker

_seq = itertools.count(1)
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def browser_matrix() -> list[tuple[str, dict[str, int]]]:
    """The (language, window) pairs a browser test walks through: Korean on a phone and
    English on a desktop, so each language and each size is seen once.
    ``MISSIONLINK_BROWSER_MATRIX=full`` (``make browsers``) adds the other two pairs."""
    pairs = [("ko", PHONE), ("en", DESKTOP)]
    if os.environ.get("MISSIONLINK_BROWSER_MATRIX") == "full":
        pairs += [("ko", DESKTOP), ("en", PHONE)]
    return pairs


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """docs/images/<name> when MISSIONLINK_UPDATE_SCREENSHOTS=1, else a temporary file."""
    if os.environ.get("MISSIONLINK_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES / name
    return tmp_path / name


@dataclass
class Actor:
    id: int
    email: str
    headers: dict[str, str]
    name: str = ""

    @property
    def token(self) -> str:
        """The access token of ``headers``, as a page keeps it in sessionStorage."""
        return self.headers["Authorization"].removeprefix("Bearer ")


async def make_user(container: Container, role: str = "viewer", *, name: str | None = None,
                    language: str = "ko") -> Actor:
    n = next(_seq)
    email = f"{role}{n}@example.com"
    now = container.clock.now()
    display = name or f"{role.title()} {n}"
    async with container.identity_db.begin() as conn:
        user_id = await conn.scalar(
            insert(users).values(email=email, email_normalized=email, password_hash="x",
                                 display_name=display, role=role, language=language,
                                 created_at=now).returning(users.c.id)
        )
    assert user_id is not None
    async with container.core_db.begin() as conn:
        await open_member(conn, defaults=container.member_defaults, user_id=user_id,
                          display_name=display, role=role, now=now)
    token = container.tokens.issue(user_id, role, now)
    return Actor(user_id, email, {"Authorization": f"Bearer {token}"}, display)


async def top_up(client: httpx.AsyncClient, actor: Actor, amount: int) -> None:
    r = await client.post("/api/v1/wallet/topups", json={"amount": amount}, headers=actor.headers)
    assert r.status_code == 201, r.text


async def propose(client: httpx.AsyncClient, creator: Actor, streamer: Actor, *,
                  amount: int = 10_000, duration: int = 3600, title: str = "매운 라면 먹기",
                  ) -> dict[str, Any]:
    """A new mission (201) from ``creator`` to ``streamer``, with its first pledge."""
    r = await client.post("/api/v1/missions", headers=creator.headers, json={
        "streamer_id": streamer.id, "title": title, "description": "",
        "amount": amount, "duration_seconds": duration})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def wallet(client: httpx.AsyncClient, actor: Actor) -> dict[str, int]:
    r = await client.get("/api/v1/wallet", headers=actor.headers)
    assert r.status_code == 200, r.text
    data: dict[str, int] = r.json()
    return data


async def settle_all(container: Container) -> None:
    await Worker(container).run_until_idle()


async def assert_ledger_ok(container: Container) -> None:
    async with container.core_db.read() as conn:
        report = await check(conn)
    assert report.ok, report.render()


@contextlib.contextmanager
def service_log_lines() -> Iterator[io.StringIO]:
    """Every line, structlog's and the standard library's, as the deployed service writes
    them (JSON, DEBUG and up); afterwards the suite's own logging (tests/conftest.py) is
    back, so no later test renders structlog's default tracebacks, whose every-frame
    locals can hold an event loop for seconds."""
    out = io.StringIO()
    before = structlog.get_config()
    ml_logging.configure(json_logs=True, level=logging.DEBUG, file=out, cache=False)
    try:
        yield out
    finally:
        structlog.configure(**before)
        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, ml_logging._StructlogHandler)]:
            root.removeHandler(handler)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def start_serve(env: dict[str, str], port: int, log: Path, *,
                seconds: float = 90) -> subprocess.Popen[bytes]:
    """``missionlink serve --port <port>`` with ``env``, its output appended to ``log``;
    returns once ``/healthz`` answers 200 (a loaded machine starts slowly)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "missionlink.cli", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_process(proc)
    raise RuntimeError(f"serve did not start in {seconds:.0f} s:\n{log.read_text()}")
