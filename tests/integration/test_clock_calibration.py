"""On PostgreSQL, API and worker processes set their clocks by the database server's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from missionlink import bootstrap
from missionlink.api.app import create_app
from missionlink.domain.clock import FrozenClock, ReferenceClock
from missionlink.migrations.runner import upgrade_all
from missionlink.workers.runner import Worker
from tests.conftest import BACKENDS, make_settings
from tests.fakes import MemoryMailer

pytestmark = pytest.mark.parametrize("database_urls", [BACKENDS[1]], indirect=True)
AHEAD = timedelta(hours=2)


async def _container(tmp_path: Path, database_urls: dict[str, str]) -> bootstrap.Container:
    settings = make_settings(tmp_path, database_urls)
    await asyncio.to_thread(upgrade_all, settings)
    # This host's clock runs two hours ahead of the database server's.
    local = FrozenClock(datetime.now(UTC) + AHEAD)
    return bootstrap.build(settings, clock=ReferenceClock(local), mailer=MemoryMailer())


def _close_to_real_time(when: datetime) -> bool:
    return abs(when - datetime.now(UTC)) < timedelta(minutes=1)


async def test_the_api_sets_its_clock_by_the_database(tmp_path: Path,
                                                      database_urls: dict[str, str]) -> None:
    container = await _container(tmp_path, database_urls)
    app = create_app(container)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if _close_to_real_time(container.clock.now()):
                break
            await asyncio.sleep(0.05)
        assert _close_to_real_time(container.clock.now())


async def test_the_worker_sets_its_clock_before_it_expires_anything(
        tmp_path: Path, database_urls: dict[str, str]) -> None:
    container = await _container(tmp_path, database_urls)
    try:
        assert not _close_to_real_time(container.clock.now())
        await Worker(container).run_once()
        assert _close_to_real_time(container.clock.now())
    finally:
        await container.close()


def test_the_wiring_picks_the_database_clock_only_on_postgresql(
        tmp_path: Path, database_urls: dict[str, str]) -> None:
    assert isinstance(bootstrap.build(make_settings(tmp_path, database_urls)).clock,
                      ReferenceClock)
    assert not isinstance(bootstrap.build(make_settings(tmp_path / "embedded", {})).clock,
                          ReferenceClock)
