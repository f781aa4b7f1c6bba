"""Shared fixtures: a fresh pair of databases per test on SQLite, and on PostgreSQL when
``MISSIONLINK_TEST_POSTGRES_URL`` is set (under ``CI=true`` a missing URL fails the run)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from missionlink import bootstrap
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.config import Settings, normalize_database_url
from missionlink.domain.clock import FrozenClock
from missionlink.migrations.runner import upgrade_all
from missionlink.observability import logging as ml_logging
from tests.fakes import MemoryMailer

# structlog as the service configures it in development (console lines, plain
# tracebacks), not structlog's defaults, whose rich tracebacks with every frame's locals
# can hold an event loop for seconds while a test waits on it.
structlog.configure(
    processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                *ml_logging.processors(json_logs=False)],
    cache_logger_on_first_use=False,
)

PG_ENV = "MISSIONLINK_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


REDIS_ENV = "MISSIONLINK_TEST_REDIS_URL"


def redis_test_url(what: str) -> str:
    """The Redis URL for tests that need one; skip without it (fail under ``CI=true``).

    Under pytest-xdist each worker gets a database of its own, counting down from the one
    in the URL (``gw0`` the URL's, ``gw1`` the one below, ...): rate limits and revocations
    keyed by the loopback address would otherwise meet across workers."""
    url = os.environ.get(REDIS_ENV, "")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{REDIS_ENV} is not set under CI=true: {what} must run")
        pytest.skip(f"{what} needs {REDIS_ENV} (e.g. redis://127.0.0.1:6379/15)")
    return redis_url_of_worker(url, os.environ.get("PYTEST_XDIST_WORKER", ""))


def redis_url_of_worker(url: str, worker: str) -> str:
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    database = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database - int(worker[2:])) % 16}"))


#: Tests that start clusters of processes or container builds. ``make test`` hands whole
#: files to its xdist workers (``--dist loadfile``); these files take a lock for as long as
#: they run, so two of them never load the machine at once, and they are spread through the
#: run (``pytest_collection_modifyitems``) so that the other worker rarely waits for it.
HEAVY = ("tests/chaos/test_faults.py", "tests/chaos/test_crash.py", "tests/cluster/",
         "tests/infra/test_container.py")
HEAVY_LOCK = Path(tempfile.gettempdir()) / "missionlink-heavy-tests.lock"


@pytest.fixture(scope="module", autouse=True)
def _heavy_files_one_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """Module-scoped and autouse, so it is set up before the file's own module fixtures."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or not request.node.nodeid.startswith(HEAVY):
        yield
        return
    with HEAVY_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def spread_heavy_files(items: list[pytest.Item]) -> list[pytest.Item]:
    """The same items, each file's together and in its order, with the heavy files placed
    evenly among the others instead of next to each other (tests/chaos and tests/cluster
    sort side by side), so two workers seldom reach one at the same time."""
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    heavy = [f for f in files if f.startswith(HEAVY)]
    light = [f for f in files if not f.startswith(HEAVY)]
    if not heavy:
        return items
    order: list[str] = []
    step = len(light) / len(heavy)
    start = 0
    for i, name in enumerate(heavy):  # each in the middle of its share of the light files
        end = round((i + 0.5) * step)
        order += [*light[start:end], name]
        start = end
    order += light[start:]
    return [item for name in order for item in files[name]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items[:] = spread_heavy_files(items)


def pg_admin_url() -> str:
    url = os.environ.get(PG_ENV, "")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PG_ENV} is not set under CI=true: the PostgreSQL suite must run")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/postgres)")
    return url


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _db_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rstrip("/").rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
async def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield {}
        return
    admin = pg_admin_url()
    suffix = uuid.uuid4().hex[:10]
    names = {"core": f"ml_test_core_{suffix}", "identity": f"ml_test_identity_{suffix}"}
    for name in names.values():
        await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        yield {
            "MISSIONLINK_DATABASE_URL": _db_url(admin, names["core"]),
            "MISSIONLINK_IDENTITY_DATABASE_URL": _db_url(admin, names["identity"]),
        }
    finally:
        for name in names.values():
            await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(tmp_path: Path, urls: dict[str, str], **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "var",
        "database_url": urls.get("MISSIONLINK_DATABASE_URL", ""),
        "identity_database_url": urls.get("MISSIONLINK_IDENTITY_DATABASE_URL", ""),
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "rate_limit_signups_per_minute": 0,
        "rate_limit_pledges_per_minute": 0,
        "rate_limit_posts_per_minute": 0,
        # Tests register a payout account and withdraw at once; the cool-down has its own.
        "payout_account_cooldown_hours": 0,
        "cors_origins": ["https://app.missionlink.example.com"],
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module to change settings for its tests."""
    return {}


@pytest.fixture
async def container(
    tmp_path: Path,
    database_urls: dict[str, str],
    clock: FrozenClock,
    mailer: MemoryMailer,
    settings_overrides: dict[str, object],
) -> AsyncIterator[Container]:
    settings = make_settings(tmp_path, database_urls, **settings_overrides)
    (tmp_path / "var").mkdir(exist_ok=True)
    await asyncio.to_thread(upgrade_all, settings)
    c = bootstrap.build(settings, clock=clock, mailer=mailer)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Integration and e2e tests run on SQLite and PostgreSQL; unit tests on SQLite only."""
    if "database_urls" in metafunc.fixturenames and ".unit." not in f".{metafunc.module.__name__}.":
        if not any(m.name == "parametrize" and "database_urls" in m.args[0]
                   for m in metafunc.definition.iter_markers()):
            metafunc.parametrize("database_urls", BACKENDS, indirect=True)
