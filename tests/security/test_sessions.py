"""Sessions: the refresh cookie works only for this site's pages, and an ended session's
access tokens stop working at once, on every instance, including ones started later."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from missionlink import bootstrap
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.conftest import redis_test_url
from tests.fakes import MemoryMailer

PASSWORD = "correct horse battery"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"
FOREIGN = "https://evil.example"
CORS_ORIGIN = "https://app.missionlink.example.com"  # CORS_ORIGINS in the test settings

# The database plays a part only when an instance starts: the rest runs on SQLite alone.
SQLITE_ONLY = pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)


@contextlib.asynccontextmanager
async def _client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def session(client: httpx.AsyncClient, email: str = "fan@example.com") -> dict[str, Any]:
    data = {"email": email, "password": PASSWORD, "display_name": "Fan", "role": "viewer"}
    await client.post("/api/v1/auth/signup", json=data)
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    pair: dict[str, Any] = r.json()
    return pair


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def cookie(pair: dict[str, Any], **headers: str) -> dict[str, str]:
    return {"Cookie": f"ml_refresh={pair['refresh_token']}", **headers}


def assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/forbidden")


@SQLITE_ONLY
async def test_cookie_refresh_is_refused_from_other_sites(
    client: httpx.AsyncClient, container: Container
) -> None:
    pair = await session(client)
    client.cookies.clear()
    for headers in (
        {"Origin": FOREIGN},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        assert_refused(await client.post(REFRESH, headers=cookie(pair, **headers)))
        assert_refused(await client.post(f"{REFRESH}?cookie=1", headers=cookie(pair, **headers)))
    # None of those spent the token: this site's page refreshes with it.
    own = container.settings.public_url.rstrip("/")
    r = await client.post(REFRESH, headers=cookie(pair, Origin=own))
    assert r.status_code == 200, r.text
    pair = r.json()
    r = await client.post(REFRESH, headers=cookie(pair, Origin=CORS_ORIGIN))
    assert r.status_code == 200, r.text
    pair = r.json()
    r = await client.post(REFRESH, headers=cookie(pair, **{"Sec-Fetch-Site": "same-origin"}))
    assert r.status_code == 200, r.text
    # The page the request came from was served from the address it was sent to.
    r = await client.post(REFRESH, headers=cookie(r.json(), Origin="http://testserver"))
    assert r.status_code == 200, r.text
    # An API client sends the token in the body and no browser headers at all.
    r = await client.post(REFRESH, json={"refresh_token": r.json()["refresh_token"]})
    assert r.status_code == 200, r.text


@SQLITE_ONLY
async def test_logout_is_refused_from_other_sites(client: httpx.AsyncClient) -> None:
    pair = await session(client)
    client.cookies.clear()
    for headers in ({"Origin": FOREIGN}, {"Sec-Fetch-Site": "cross-site"}):
        r = await client.post(LOGOUT, headers={**bearer(pair), **cookie(pair, **headers)})
        assert_refused(r)
    assert (await client.get(ME, headers=bearer(pair))).status_code == 200
    r = await client.post(LOGOUT, headers={**bearer(pair), **cookie(pair, Origin=CORS_ORIGIN)})
    assert r.status_code == 204, r.text


@SQLITE_ONLY
async def test_an_access_token_stops_working_at_logout(client: httpx.AsyncClient) -> None:
    pair = await session(client)
    other_device = await session(client)
    assert (await client.get(ME, headers=bearer(pair))).status_code == 200  # now cached
    body = {"refresh_token": pair["refresh_token"]}
    assert (await client.post(LOGOUT, json=body, headers=bearer(pair))).status_code == 204
    r = await client.get(ME, headers=bearer(pair))
    assert r.status_code == 401, r.text
    assert r.json()["type"].endswith("/not-authenticated")
    assert (await client.get("/api/v1/wallet", headers=bearer(pair))).status_code == 401
    assert (await client.get(ME, headers=bearer(other_device))).status_code == 200


@SQLITE_ONLY
async def test_refresh_token_reuse_ends_the_sessions_access_tokens(
    client: httpx.AsyncClient,
) -> None:
    first = await session(client)
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    assert (await client.get(ME, headers=bearer(second))).status_code == 200
    # The spent token again: someone holds a copy, so the whole session ends.
    r = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401
    for pair in (first, second):
        assert (await client.get(ME, headers=bearer(pair))).status_code == 401


async def test_an_instance_started_after_a_logout_refuses_its_tokens(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, mailer: MemoryMailer
) -> None:
    pair = await session(client)
    body = {"refresh_token": pair["refresh_token"]}
    assert (await client.post(LOGOUT, json=body, headers=bearer(pair))).status_code == 204
    later = bootstrap.build(container.settings, clock=clock, mailer=mailer)
    try:
        async with _client(later) as fresh:
            assert (await fresh.get(ME, headers=bearer(pair))).status_code == 401
            kept = await session(fresh, "kept@example.com")
            assert (await fresh.get(ME, headers=bearer(kept))).status_code == 200
    finally:
        await later.close()


async def _until_refused(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """Polls until the token is refused; the broker delivers in milliseconds."""
    for _ in range(100):
        status = (await client.get(ME, headers=headers)).status_code
        if status != 200:
            return status
        await asyncio.sleep(0.05)
    return status


@SQLITE_ONLY
async def test_logout_reaches_every_instance_through_redis(
    container: Container, clock: FrozenClock, mailer: MemoryMailer
) -> None:
    url = redis_test_url("the shared session revocation test")
    settings = container.settings.model_copy(update={"broker_url": url})
    one = bootstrap.build(settings, clock=clock, mailer=mailer)
    two = bootstrap.build(settings, clock=clock, mailer=mailer)
    later: Container | None = None
    try:
        async with _client(one) as a, _client(two) as b:
            pair = await session(a)
            reused = await session(b, "reuse@example.com")
            assert (await b.get(ME, headers=bearer(pair))).status_code == 200
            assert (await a.get(ME, headers=bearer(reused))).status_code == 200
            body = {"refresh_token": pair["refresh_token"]}
            assert (await a.post(LOGOUT, json=body, headers=bearer(pair))).status_code == 204
            assert await _until_refused(b, bearer(pair)) == 401
            # Reuse detected on one instance ends the session on the other too.
            spent = {"refresh_token": reused["refresh_token"]}
            assert (await b.post(REFRESH, json=spent)).status_code == 200
            assert (await b.post(REFRESH, json=spent)).status_code == 401
            assert await _until_refused(a, bearer(reused)) == 401
            # An instance that starts now learns both from Redis.
            later = bootstrap.build(settings, clock=clock, mailer=mailer)
            async with _client(later) as c:
                for ended in (pair, reused):
                    assert (await c.get(ME, headers=bearer(ended))).status_code == 401
    finally:
        for instance in (one, two, later):
            if instance is not None:
                await instance.close()
