"""The worker: retries with backoff, dead letters and replay, exactly-once result emails."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from missionlink.adapters.db.core_tables import dead_letters, email_jobs, outbox
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.workers import handlers
from missionlink.workers.dead_letters import replay
from missionlink.workers.runner import Worker
from tests.fakes import MemoryMailer
from tests.helpers import assert_ledger_ok, make_user, propose, settle_all, top_up, wallet


async def _rejected_mission(client: httpx.AsyncClient, container: Container, backers: int) -> int:
    streamer = await make_user(container, "streamer")
    fans = [await make_user(container) for _ in range(backers)]
    for f in fans:
        await top_up(client, f, 3_000)
    m = await propose(client, fans[0], streamer, amount=1000, duration=600, title="t")
    for f in fans[1:]:
        await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                          headers=f.headers)
    await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                      headers=fans[0].headers)
    await client.post(f"/api/v1/missions/{m['id']}/reject", headers=streamer.headers)
    return int(m["id"])


async def test_each_backer_gets_exactly_one_email_despite_mail_failures(
    client: httpx.AsyncClient, container: Container, mailer: MemoryMailer, clock: FrozenClock
) -> None:
    await _rejected_mission(client, container, backers=4)
    mailer.fail_next = 3
    worker = Worker(container)
    await worker.run_until_idle()
    for _ in range(5):
        clock.advance(600)
        await worker.run_until_idle()
    ids = [str(m["Message-ID"]) for m in mailer.sent]
    assert len(ids) == 5 == len(set(ids))  # four backers (one pledged twice) and the streamer
    async with container.core_db.read() as conn:
        statuses = set((await conn.execute(select(email_jobs.c.status))).scalars())
    assert statuses == {"sent"}
    await assert_ledger_ok(container)


async def test_a_crash_after_sending_resends_with_the_same_message_id(
    client: httpx.AsyncClient, container: Container, mailer: MemoryMailer, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from missionlink.workers import emails

    await _rejected_mission(client, container, backers=2)
    await Worker(container).process_outbox()

    async def crash(*_: Any, **__: Any) -> None:
        raise SystemExit("worker killed before recording the sends")

    monkeypatch.setattr(emails, "_record", crash)
    with pytest.raises(SystemExit):
        await emails.send_batch(container)
    first = sorted(str(m["Message-ID"]) for m in mailer.sent)
    monkeypatch.undo()
    clock.advance(600)  # the claim's lease runs out
    await emails.send_batch(container)
    second = sorted(str(m["Message-ID"]) for m in mailer.sent[len(first):])
    assert first == second and len(first) == 3


async def test_failing_handler_is_retried_then_dead_lettered_and_replayable(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mission_id = await _rejected_mission(client, container, backers=2)
    calls = 0

    async def broken(*_: Any) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("settlement exploded")

    monkeypatch.setitem(handlers.HANDLERS, "mission.ended", [("settlement", broken)])
    worker = Worker(container)
    for _ in range(container.settings.worker_max_attempts + 2):
        await worker.run_until_idle()
        clock.advance(3600)
    assert calls == container.settings.worker_max_attempts
    async with container.core_db.read() as conn:
        dead = (await conn.execute(select(dead_letters))).one()
    assert dead.topic == "mission.ended" and "exploded" in dead.error
    monkeypatch.undo()
    assert await replay(container.core_db, dead.id)
    assert not await replay(container.core_db, dead.id)
    await settle_all(container)
    got = (await client.get(f"/api/v1/missions/{mission_id}")).json()
    assert got["settlement"] == "settled"
    async with container.core_db.read() as conn:
        left = await conn.scalar(select(func.count()).where(outbox.c.processed_at.is_(None)))
    assert left == 0
    await assert_ledger_ok(container)


async def test_settling_twice_moves_money_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    from missionlink.services.settlement import settle

    mission_id = await _rejected_mission(client, container, backers=3)
    await settle_all(container)
    async with container.core_db.begin() as conn:
        assert await settle(conn, mission_id, container.clock.now()) is False
    await assert_ledger_ok(container)


async def test_webhook_provider_confirms_a_top_up_once(
    tmp_path: Any, database_urls: dict[str, str], clock: FrozenClock, mailer: MemoryMailer
) -> None:
    import asyncio
    import json

    from missionlink import bootstrap
    from missionlink.adapters.payments.providers import SIGNATURE_HEADER, sign
    from missionlink.api.app import create_app
    from missionlink.migrations.runner import upgrade_all
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database_urls, payment_provider="webhook",
                             payment_webhook_secret="whsec_test_secret")
    await asyncio.to_thread(upgrade_all, settings)
    c = bootstrap.build(settings, clock=clock, mailer=mailer)
    try:
        transport = httpx.ASGITransport(app=create_app(c))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            a = await make_user(c)
            r = await client.post("/api/v1/wallet/topups", json={"amount": 8000},
                                  headers=a.headers)
            assert r.status_code == 201 and r.json()["status"] == "pending"
            payment_id = r.json()["provider_payment_id"]
            body = json.dumps({"payment_id": payment_id, "status": "completed"}).encode()
            now = int(clock.now().timestamp())
            url = "/api/v1/payments/webhook/webhook"
            forged = await client.post(url, content=body,
                                       headers={SIGNATURE_HEADER: sign("wrong", now, body)})
            assert forged.status_code == 401
            stale = await client.post(url, content=body, headers={
                SIGNATURE_HEADER: sign("whsec_test_secret", now - 3600, body)})
            assert stale.status_code == 401
            good = {SIGNATURE_HEADER: sign("whsec_test_secret", now, body)}
            first = await client.post(url, content=body, headers=good)
            again = await client.post(url, content=body, headers=good)
            assert first.json()["applied"] is True and again.json()["applied"] is False
            assert (await wallet(client, a))["cash_balance"] == 8000
            await assert_ledger_ok(c)
    finally:
        await c.close()
