"""SIGTERM to ``missionlink worker`` mid-batch: the event being handled is finished and
committed, the rest of the claimed batch is released unprocessed for the next worker, and
the process exits 0 at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, select, text

from missionlink.adapters.db.core_tables import outbox, processed_events
from missionlink.bootstrap import Container
from missionlink.workers.handlers import HANDLERS
from missionlink.workers.runner import Worker
from tests.helpers import make_user, propose, top_up

pytestmark = pytest.mark.parametrize(
    "database_urls", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


async def _lock_waiters(container: Container) -> int:
    async with container.core_db.read() as conn:
        return int(await conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'")) or 0)


async def _unprocessed(container: Container) -> list[int]:
    async with container.core_db.read() as conn:
        return list((await conn.execute(
            select(outbox.c.id).where(outbox.c.processed_at.is_(None)).order_by(outbox.c.id)
        )).scalars())


async def test_sigterm_mid_batch_finishes_the_event_in_hand_and_releases_the_rest(
    client: httpx.AsyncClient, container: Container, tmp_path: Path,
) -> None:
    streamer = await make_user(container, "streamer")
    fans = [await make_user(container) for _ in range(3)]
    for fan in fans:
        await top_up(client, fan, 5_000)
    m = await propose(client, fans[0], streamer, amount=1000, duration=3600, title="drain")
    for fan in fans[1:]:
        r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                              headers=fan.headers)
        assert r.status_code == 201, r.text
    waiting = await _unprocessed(container)
    assert len(waiting) >= 3
    first = waiting[0]
    async with container.core_db.read() as conn:
        topic = await conn.scalar(select(outbox.c.topic).where(outbox.c.id == first))
    handler = HANDLERS[topic][0][0]

    s = container.settings
    env = {
        **os.environ,
        "MISSIONLINK_DATA_DIR": str(s.data_dir),
        "MISSIONLINK_DATABASE_URL": s.database_url,
        "MISSIONLINK_IDENTITY_DATABASE_URL": s.identity_database_url,
        "MISSIONLINK_METRICS_PORT": "0",
    }
    log = (tmp_path / "worker.log").open("wb")
    # An uncommitted row with the key the worker writes once the first event's first
    # handler is done: the worker claims the batch, handles that event and then waits here.
    async with container.core_db.engine.connect() as blocker:
        tx = await blocker.begin()
        await blocker.execute(insert(processed_events).values(
            event_id=first, handler=handler, processed_at=container.clock.now()))
        proc = subprocess.Popen([sys.executable, "-m", "missionlink.cli", "worker"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90  # a loaded machine starts slowly
            while await _lock_waiters(container) == 0:
                assert proc.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "the worker never reached the event"
                await asyncio.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert proc.poll() is None, "the worker quit in the middle of an event"
            await tx.rollback()
            signalled = time.monotonic()
            code = await asyncio.to_thread(proc.wait, 10)
            assert code == 0, (tmp_path / "worker.log").read_text()
            assert time.monotonic() - signalled < 3
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            log.close()

    # The event in hand was finished; the rest of the batch is back, unprocessed, unlocked.
    assert await _unprocessed(container) == waiting[1:]
    async with container.core_db.begin() as conn:
        locked = await conn.execute(
            select(outbox.c.id).where(outbox.c.id.in_(waiting[1:]))
            .with_for_update(nowait=True))
        assert len(list(locked)) == len(waiting) - 1
    await Worker(container).run_until_idle()
    assert await _unprocessed(container) == []
