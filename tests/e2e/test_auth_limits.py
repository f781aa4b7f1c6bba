"""Rate limits on failed logins (per account and address, per address) and on signups."""

from __future__ import annotations

import httpx
import pytest

from missionlink.bootstrap import Container

PASSWORD = "correct horse battery"
LOGIN = "/api/v1/auth/login"
SIGNUP = "/api/v1/auth/signup"


# Rate limits live in memory: the database backend plays no part.
pytestmark = pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)


async def signup(client: httpx.AsyncClient, email: str) -> httpx.Response:
    data = {"email": email, "password": PASSWORD, "display_name": "Fan", "role": "viewer"}
    return await client.post(SIGNUP, json=data)


async def login(
    client: httpx.AsyncClient, email: str, password: str, address: str = "203.0.113.7"
) -> httpx.Response:
    # The test transport has one peer address; a trusted proxy lets each test pick its own.
    headers = {"X-Forwarded-For": address}
    return await client.post(LOGIN, json={"email": email, "password": password}, headers=headers)


def assert_rate_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["type"].endswith("/rate-limited")
    assert 1 <= int(r.headers["retry-after"]) <= 15 * 60


TRUST_TEST_PEER = {"trusted_proxies": ["127.0.0.1"]}


@pytest.mark.parametrize("settings_overrides", [TRUST_TEST_PEER])
async def test_failed_logins_are_rate_limited_per_account_and_address(
    client: httpx.AsyncClient, container: Container
) -> None:
    await signup(client, "fan@example.com")
    limit = container.settings.rate_limit_login_failures
    for _ in range(limit):
        assert (await login(client, "fan@example.com", "wrong password!")).status_code == 401
    # The address that failed waits, even with the right password; the owner elsewhere not.
    assert_rate_limited(await login(client, "FAN@example.com", PASSWORD))
    assert (await login(client, "fan@example.com", PASSWORD, "198.51.100.9")).status_code == 200
    assert (await signup(client, "other@example.com")).status_code == 201
    assert (await login(client, "other@example.com", PASSWORD)).status_code == 200


@pytest.mark.parametrize("settings_overrides", [TRUST_TEST_PEER])
async def test_a_successful_login_clears_the_accounts_failures(
    client: httpx.AsyncClient, container: Container
) -> None:
    await signup(client, "fan@example.com")
    limit = container.settings.rate_limit_login_failures
    for _ in range(2):
        for _ in range(limit - 1):
            assert (await login(client, "fan@example.com", "wrong password!")).status_code == 401
        assert (await login(client, "fan@example.com", PASSWORD)).status_code == 200


@pytest.mark.parametrize("settings_overrides", [TRUST_TEST_PEER])
async def test_failed_logins_are_rate_limited_per_client_address(
    client: httpx.AsyncClient, container: Container
) -> None:
    limit = container.settings.rate_limit_login_failures
    for n in range(limit * 4):
        r = await login(client, f"guess{n // limit}@example.com", "wrong password!")
        assert r.status_code == 401, n
    assert_rate_limited(await login(client, "fresh@example.com", "wrong password!"))
    r = await login(client, "fresh@example.com", "wrong password!", "198.51.100.9")
    assert r.status_code == 401


@pytest.mark.parametrize(
    "settings_overrides", [{**TRUST_TEST_PEER, "rate_limit_signups_per_minute": 3}]
)
async def test_signups_are_rate_limited_per_client_address(client: httpx.AsyncClient) -> None:
    async def signup_from(address: str, n: int) -> httpx.Response:
        data = {"email": f"s{n}@example.com", "password": PASSWORD, "display_name": "S"}
        headers = {"X-Forwarded-For": address}
        return await client.post(SIGNUP, json={**data, "role": "viewer"}, headers=headers)

    for n in range(3):
        assert (await signup_from("192.0.2.10", n)).status_code == 201
    assert_rate_limited(await signup_from("192.0.2.10", 3))
    assert (await signup_from("192.0.2.44", 3)).status_code == 201


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_login_failures": 0}])
async def test_a_zero_login_limit_turns_the_rule_off(client: httpx.AsyncClient) -> None:
    await signup(client, "fan@example.com")
    for _ in range(30):
        assert (await login(client, "fan@example.com", "wrong password!")).status_code == 401
    assert (await login(client, "fan@example.com", PASSWORD)).status_code == 200
