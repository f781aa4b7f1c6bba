"""Login throttling that a stranger cannot turn against the account's owner.

Failures count per (account, address), per address and per account. An address that
failed on an account is refused for it after ``RATE_LIMIT_LOGIN_FAILURES``; past that many
failures on the account from anywhere, addresses that failed on it wait a doubling,
capped delay; an address that never failed on it always has its password checked.
Each test runs against the in-process limiter and, with ``MISSIONLINK_TEST_REDIS_URL``,
against two app instances sharing the Redis limiter.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from missionlink import bootstrap
from missionlink.adapters.security.rate_limit import MemoryRateLimiter, RedisRateLimiter
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.conftest import redis_test_url
from tests.fakes import MemoryMailer

PASSWORD = "correct horse battery"
WRONG = "wrong password!"
OWNER = "owner@example.com"
STRANGER = "203.0.113.66"
TRUST_TEST_PEER = {"trusted_proxies": ["127.0.0.1"]}

pytestmark = pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)


@dataclass
class Replicas:
    """Two API instances (one and the same in memory mode) and the limiter's clock."""

    a: httpx.AsyncClient
    b: httpx.AsyncClient
    now: list[float]

    def pick(self, n: int) -> httpx.AsyncClient:
        return self.b if n % 2 else self.a


@contextlib.asynccontextmanager
async def _client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(params=["memory", "redis"])
async def replicas(
    request: pytest.FixtureRequest, container: Container, clock: FrozenClock, mailer: MemoryMailer
) -> AsyncIterator[Replicas]:
    now = [1_000_000.0]
    if request.param == "memory":
        await container.limiter.close()
        container.limiter = MemoryRateLimiter(monotonic=lambda: now[0])
        async with _client(container) as a:
            yield Replicas(a, a, now)
        return
    url = redis_test_url("the shared login throttle test")
    prefix = f"missionlink-test:{uuid.uuid4().hex}:"
    second = bootstrap.build(container.settings, clock=clock, mailer=mailer)
    try:
        for c in (container, second):
            await c.limiter.close()
            c.limiter = RedisRateLimiter(url, prefix=prefix, clock=lambda: now[0])
        async with _client(container) as a, _client(second) as b:
            yield Replicas(a, b, now)
    finally:
        await second.close()


async def signup(client: httpx.AsyncClient, email: str) -> None:
    data = {"email": email, "password": PASSWORD, "display_name": "Owner", "role": "viewer"}
    r = await client.post("/api/v1/auth/signup", json=data)
    assert r.status_code == 201, r.text


async def login(
    client: httpx.AsyncClient, email: str, password: str, address: str
) -> httpx.Response:
    # The test transport has one peer address; a trusted proxy lets each call pick its own.
    return await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": address},
    )


def retry_after(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/rate-limited")
    return int(r.headers["retry-after"])


@pytest.mark.parametrize("settings_overrides", [TRUST_TEST_PEER])
async def test_a_strangers_failures_never_lock_the_owner_out(
    replicas: Replicas, container: Container
) -> None:
    limit = container.settings.rate_limit_login_failures
    await signup(replicas.a, OWNER)
    for n in range(limit * 5):
        r = await login(replicas.pick(n), OWNER, WRONG, STRANGER)
        if n < limit:
            assert r.status_code == 401, (n, r.text)
        else:  # the stranger's own address is refused for this account
            assert 1 <= retry_after(r) <= 15 * 60
    # The owner, from home, with the right password: in, on either instance.
    assert (await login(replicas.b, OWNER, PASSWORD, "198.51.100.20")).status_code == 200
    assert (await login(replicas.a, OWNER, PASSWORD, "198.51.100.21")).status_code == 200
    # The stranger's address stays refused, right password or not: a 429 reveals nothing.
    retry_after(await login(replicas.a, OWNER, PASSWORD, STRANGER))
    retry_after(await login(replicas.b, OWNER, WRONG, STRANGER))
    # The per-address limit still trips, across accounts.
    for n in range(limit * 3):
        r = await login(replicas.pick(n), f"guess{n // limit}@example.com", WRONG, STRANGER)
        assert r.status_code == 401, (n, r.text)
    retry_after(await login(replicas.a, "fresh@example.com", WRONG, STRANGER))
    r = await login(replicas.b, "fresh@example.com", WRONG, "198.51.100.22")
    assert r.status_code == 401


@pytest.mark.parametrize(
    "settings_overrides",
    [{**TRUST_TEST_PEER, "rate_limit_login_failures": 5, "rate_limit_login_max_delay_seconds": 10}],
)
async def test_the_accounts_delay_doubles_is_capped_and_spares_clean_addresses(
    replicas: Replicas,
) -> None:
    await signup(replicas.a, OWNER)
    guessers = [f"192.0.2.{n}" for n in range(1, 6)]
    for n, address in enumerate(guessers):  # five addresses, one failure each
        assert (await login(replicas.pick(n), OWNER, WRONG, address)).status_code == 401
    waits = []
    for step in range(6):
        address = guessers[step % len(guessers)]
        wait = retry_after(await login(replicas.pick(step), OWNER, WRONG, address))
        waits.append(wait)
        replicas.now[0] += wait
        r = await login(replicas.pick(step + 1), OWNER, WRONG, address)
        assert r.status_code == 401, (step, r.text)
    assert waits == [1, 2, 4, 8, 10, 10]
    # An address that failed waits even with the right password: the 429 is no oracle.
    assert retry_after(await login(replicas.a, OWNER, PASSWORD, guessers[1])) == 10
    # An address that never failed here has its password checked: wrong is 401, right is in.
    assert (await login(replicas.b, OWNER, WRONG, "198.51.100.30")).status_code == 401
    assert (await login(replicas.a, OWNER, PASSWORD, "198.51.100.31")).status_code == 200
    # The owner's success ends the delay.
    assert (await login(replicas.b, OWNER, PASSWORD, guessers[2])).status_code == 200
