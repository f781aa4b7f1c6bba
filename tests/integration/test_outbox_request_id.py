"""Outbox events keep the id of the request that wrote them (migration 0006)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from alembic import command
from sqlalchemy import select

from missionlink.adapters.db.core_tables import outbox
from missionlink.bootstrap import Container
from missionlink.domain import events as topics
from missionlink.migrations.runner import alembic_config
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
async def test_a_pledge_event_keeps_its_request_id_on_either_desk(
    client: httpx.AsyncClient, container: Container
) -> None:
    """The batched PostgreSQL desk passes the caller's request id to its function too."""
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 20_000)
    m = await propose(client, fan, streamer)
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                          headers={**fan.headers, "X-Request-Id": "req-pledge-9"})
    assert r.status_code == 201, r.text
    async with container.core_db.read() as conn:
        rows = (await conn.execute(select(outbox.c.topic, outbox.c.request_id))).all()
    assert (topics.PLEDGE_CREATED, "req-pledge-9") in rows
