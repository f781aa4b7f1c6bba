"""Refresh-token rotation, reuse detection, logout and the browser cookie mode."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from missionlink.adapters.db.identity_tables import refresh_tokens
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock

PASSWORD = "correct horse battery"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"

# The backend plays no part here: run on SQLite only to keep the suite fast.
SQLITE_ONLY = pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)


async def session(
    client: httpx.AsyncClient, email: str = "fan@example.com", query: str = ""
) -> httpx.Response:
    """Sign up (once) and log in; the login response."""
    data = {"email": email, "password": PASSWORD, "display_name": "Fan", "role": "viewer"}
    await client.post("/api/v1/auth/signup", json=data)
    r = await client.post(f"/api/v1/auth/login{query}", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": token})


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def cookie_attributes(response: httpx.Response) -> dict[str, str]:
    header = response.headers["set-cookie"]
    name_value, *attrs = [part.strip() for part in header.split(";")]
    found = {"ml_refresh": name_value.partition("=")[2].strip('"')}
    for attr in attrs:
        key, _, value = attr.partition("=")
        found[key.lower()] = value
    assert name_value.startswith("ml_refresh=")
    return found


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient, container: Container) -> None:
    first = (await session(client)).json()
    r = await refresh(client, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["token_type"] == "bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/v1/me", headers=bearer(second))).status_code == 200
    async with container.identity_db.read() as conn:
        rows = (await conn.execute(select(refresh_tokens))).all()
    assert len({row.family_id for row in rows}) == 1
    assert sorted(row.spent_at is None for row in rows) == [False, True]
    assert all(len(row.token_hash) == 64 for row in rows)
    assert first["refresh_token"] not in {row.token_hash for row in rows}


async def test_a_spent_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    first = (await session(client)).json()
    assert (await refresh(client, first["refresh_token"])).status_code == 200
    r = await refresh(client, first["refresh_token"])
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


async def test_reusing_a_spent_refresh_token_revokes_its_family(client: httpx.AsyncClient) -> None:
    stolen = (await session(client)).json()["refresh_token"]
    other_device = (await session(client)).json()["refresh_token"]
    newer = (await refresh(client, stolen)).json()["refresh_token"]
    assert (await refresh(client, stolen)).status_code == 401
    assert (await refresh(client, newer)).status_code == 401
    assert (await refresh(client, other_device)).status_code == 200


async def test_unknown_and_expired_refresh_tokens_are_401(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    token = (await session(client)).json()["refresh_token"]
    assert (await refresh(client, "not-a-token")).status_code == 401
    surrogate = b'{"refresh_token": "\\ud800"}'
    r = await client.post(REFRESH, content=surrogate, headers={"content-type": "application/json"})
    assert r.status_code == 422
    clock.advance(container.settings.refresh_token_seconds + 1)
    assert (await refresh(client, token)).status_code == 401


@SQLITE_ONLY
async def test_refresh_needs_a_token_from_the_body_or_the_cookie(client: httpx.AsyncClient) -> None:
    assert (await client.post(REFRESH)).status_code == 422
    assert (await client.post(REFRESH, json={})).status_code == 422
    assert (await client.post(REFRESH, json={"refresh_token": 7})).status_code == 422
    assert (await client.post(REFRESH, json={"refresh_token": "x", "a": 1})).status_code == 422


async def test_concurrent_refreshes_spend_the_token_once(client: httpx.AsyncClient) -> None:
    token = (await session(client)).json()["refresh_token"]
    results = await asyncio.gather(*(refresh(client, token) for _ in range(4)))
    assert sorted(r.status_code for r in results) == [200, 401, 401, 401]


async def test_logout_revokes_the_session(client: httpx.AsyncClient) -> None:
    pair = (await session(client)).json()
    kept = (await session(client)).json()
    r = await client.post(
        LOGOUT, json={"refresh_token": pair["refresh_token"]}, headers=bearer(pair)
    )
    assert r.status_code == 204
    assert r.content == b""
    assert (await refresh(client, pair["refresh_token"])).status_code == 401
    assert (await refresh(client, kept["refresh_token"])).status_code == 200


async def test_logout_needs_an_access_token(client: httpx.AsyncClient) -> None:
    pair = (await session(client)).json()
    r = await client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_logout_cannot_revoke_someone_elses_session(client: httpx.AsyncClient) -> None:
    mine = (await session(client, "me@example.com")).json()
    theirs = (await session(client, "them@example.com")).json()
    body = {"refresh_token": theirs["refresh_token"]}
    assert (await client.post(LOGOUT, json=body, headers=bearer(mine))).status_code == 204
    assert (await refresh(client, theirs["refresh_token"])).status_code == 200


@SQLITE_ONLY
async def test_cookie_mode_sets_a_strict_httponly_secure_cookie(
    client: httpx.AsyncClient, container: Container
) -> None:
    r = await session(client, query="?cookie=1")
    attrs = cookie_attributes(r)
    assert attrs["ml_refresh"] == r.json()["refresh_token"]
    assert attrs["path"] == "/api/v1/auth"
    assert attrs["samesite"].lower() == "strict"
    assert "httponly" in attrs
    assert "secure" in attrs
    assert attrs["max-age"] == str(container.settings.refresh_token_seconds)


async def test_cookie_mode_refreshes_and_logs_out_from_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    first = (await session(client)).json()
    client.cookies.clear()
    jar = {"Cookie": f"ml_refresh={first['refresh_token']}", "X-Refresh-Cookie": "1"}
    r = await client.post(REFRESH, headers=jar)
    assert r.status_code == 200, r.text
    second = r.json()
    assert cookie_attributes(r)["ml_refresh"] == second["refresh_token"]
    # A token read from the cookie is replaced there even without ?cookie=1.
    r = await client.post(REFRESH, headers={"Cookie": f"ml_refresh={second['refresh_token']}"})
    assert r.status_code == 200, r.text
    third = r.json()
    assert cookie_attributes(r)["ml_refresh"] == third["refresh_token"]
    headers = {**bearer(third), "Cookie": f"ml_refresh={third['refresh_token']}"}
    r = await client.post(LOGOUT, headers=headers)
    assert r.status_code == 204
    cleared = cookie_attributes(r)
    assert cleared["ml_refresh"] == ""
    assert cleared["max-age"] == "0"
    assert cleared["path"] == "/api/v1/auth"
    assert (await refresh(client, third["refresh_token"])).status_code == 401


@SQLITE_ONLY
async def test_the_body_wins_over_the_cookie(client: httpx.AsyncClient) -> None:
    pair = (await session(client)).json()
    headers = {"Cookie": "ml_refresh=stale-cookie-value"}
    r = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}, headers=headers)
    assert r.status_code == 200, r.text
    assert "set-cookie" not in r.headers
