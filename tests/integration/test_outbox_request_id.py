"""Outbox events keep the id of the request that wrote them (migration 0006)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from alembic import command
from sqlalchemy import select, text

from missionlink.adapters.db.core_tables import outbox
from missionlink.bootstrap import Container
from missionlink.domain import ledger as L
from missionlink.domain.clock import FrozenClock
from missionlink.migrations.runner import alembic_config
from missionlink.services import outbox as topics
from missionlink.services import pledges
from tests.helpers import make_user, propose, top_up


async def test_an_event_keeps_the_request_id_of_the_request_that_wrote_it(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 20_000)
    fan.headers = {**fan.headers, "X-Request-Id": "req-propose-7"}
    await propose(client, fan, streamer)
    async with container.core_db.read() as conn:
        rows = (await conn.execute(select(outbox.c.topic, outbox.c.request_id))).all()
    assert (topics.MISSION_CREATED, "req-propose-7") in rows


async def test_migration_0006_goes_down_and_up_again(container: Container) -> None:
    cfg = alembic_config("core", container.settings.core_url)
    await container.core_db.dispose()
    await asyncio.to_thread(command.downgrade, cfg, "0005")
    await asyncio.to_thread(command.upgrade, cfg, "head")
    async with container.core_db.read() as conn:
        assert (await conn.execute(select(outbox.c.request_id))).all() == []


@pytest.mark.parametrize("database_urls", [pytest.param("postgres",
                                                        marks=pytest.mark.postgres)],
                         indirect=True)
async def test_the_batched_pledge_function_writes_the_request_ids_it_is_given(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 50_000)
    mission = await propose(client, fan, streamer)
    now = clock.now()
    row = (mission["id"], fan.id, 2_000, now, None, "fp", now - timedelta(days=1),
           L.user_cash(fan.id), L.escrow(mission["id"]), now.isoformat())
    params = {**pledges._DOMAIN_VALUES,
              **{name: [value] for name, value in zip(pledges._COLUMNS, row, strict=True)},
              "request_ids": ["req-pledge-9"]}
    sql = pledges._PLACE.text.replace(":created_status)", ":created_status, :request_ids)")
    async with container.core_db.begin() as conn:
        answers = (await conn.execute(text(sql), params)).all()
    assert [a.outcome for a in answers] == ["created"]
    async with container.core_db.read() as conn:
        ids = (await conn.execute(select(outbox.c.request_id).where(
            outbox.c.topic == topics.PLEDGE_CREATED))).scalars().all()
    assert "req-pledge-9" in ids
