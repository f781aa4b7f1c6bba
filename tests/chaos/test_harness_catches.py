"""The harness's checkers catch a broken product: with the effect committed before its
Idempotency-Key is recorded (and a crash in between), a client's retry applies it twice,
and ``harness.check`` says so; the same load on the real code passes."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest

from missionlink.bootstrap import Container
from missionlink.services import idempotency
from missionlink.services.reconcile import check as reconcile_check
from missionlink.workers.runner import Worker
from tests.chaos.harness import (
    Actor,
    Client,
    History,
    Inbox,
    World,
    check,
    drive,
    journal_snapshot,
)
from tests.conftest import BACKENDS
from tests.fakes import MemoryMailer
from tests.helpers import make_user

pytestmark = pytest.mark.parametrize("database_urls", [BACKENDS[1]], indirect=True)


async def _run(client: httpx.AsyncClient, container: Container,
               mailer: MemoryMailer) -> list[str]:
    history = History()
    harness = Client(client, history)
    streamer = await make_user(container, "streamer")

    def actor(a: Any) -> Actor:
        return Actor(a.id, a.email, a.token)

    fans = [actor(await make_user(container)) for _ in range(3)]
    for fan in fans:
        op = await harness.post("topup", fan.id, "/api/v1/wallet/topups", fan.token,
                                {"amount": 100_000})
        assert op.outcome == "ok", (op.status, op.body)
    world = World([actor(streamer)], fans)
    await drive(harness, world, seed=7, seconds=60, lanes=1, max_operations=60)
    await harness.retry_unknown()
    await Worker(container).run_until_idle()
    url = container.settings.core_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        journal = await journal_snapshot(conn)

        async def reconcile() -> tuple[int, str]:
            async with container.core_db.read() as db:
                report = await reconcile_check(db)
            return (0 if report.ok else 1), report.render()

        inbox = Inbox()
        inbox.messages.extend(mailer.sent)
        problems = await check(conn, history, inbox, reconcile, journal)
    finally:
        await conn.close()
    # Missions are left open here (no settlement in this in-process run): only the
    # exactly-once findings matter.
    return [p for p in problems if "still pending" not in p and "still accepted" not in p]


async def test_the_real_code_passes_the_checkers(
        client: httpx.AsyncClient, container: Container, mailer: MemoryMailer) -> None:
    assert await _run(client, container, mailer) == []


async def test_an_effect_committed_before_its_key_is_caught(
        client: httpx.AsyncClient, container: Container, mailer: MemoryMailer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_run = idempotency.run
    sends: Counter[str] = Counter()
    crash = random.Random(3)

    async def commit_then_record(db: Any, **kw: Any) -> idempotency.StoredResponse:
        key = kw["key"]
        sends[key] += 1
        if key is not None and sends[key] == 1 and crash.random() < 0.3:
            # The broken order: the effect commits in a transaction of its own, and the
            # process dies before the key (and its response) is recorded.
            await db.transaction(kw["work"])
            raise ConnectionResetError("the process died after its commit")
        return await real_run(db, **kw)

    monkeypatch.setattr(idempotency, "run", commit_then_record)
    problems = await _run(client, container, mailer)
    assert any("keys made it" in p and ": 0 keys" in p for p in problems), problems
