"""POST /api/v1/auth/signup: accounts, validation, duplicates and the core-side wallet."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import Select, select

from missionlink.adapters.db.core_tables import channels, members, wallets
from missionlink.bootstrap import Container

SIGNUP = "/api/v1/auth/signup"
PASSWORD = "correct horse battery"


def _channel_of(user_id: int) -> Select[tuple[int]]:
    return select(channels.c.streamer_id).where(channels.c.streamer_id == user_id)


def body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "email": "fan@example.com",
        "password": PASSWORD,
        "display_name": "Fan",
        "role": "viewer",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


async def test_signup_creates_a_viewer_with_korean_by_default(client: httpx.AsyncClient) -> None:
    r = await client.post(SIGNUP, json=body(display_name="  Fan One  "))
    assert r.status_code == 201, r.text
    user = r.json()
    assert isinstance(user["id"], int)
    assert {k: v for k, v in user.items() if k != "id"} == {
        "email": "fan@example.com",
        "display_name": "Fan One",
        "role": "viewer",
        "language": "ko",
    }
    assert "password" not in r.text
    assert "hash" not in r.text


async def test_signup_creates_the_wallet_with_signup_points(
    client: httpx.AsyncClient, container: Container
) -> None:
    r = await client.post(SIGNUP, json=body(role="streamer", language="en"))
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    async with container.core_db.read() as conn:
        wallet = (await conn.execute(select(wallets).where(wallets.c.user_id == user_id))).one()
        member = (await conn.execute(select(members).where(members.c.user_id == user_id))).one()
        channel = await conn.scalar(_channel_of(user_id))
    assert wallet.points_balance == container.settings.signup_points
    assert wallet.cash_balance == 0
    assert (member.role, member.display_name) == ("streamer", "Fan")
    assert channel == user_id


async def test_viewers_get_no_channel(client: httpx.AsyncClient, container: Container) -> None:
    user_id = (await client.post(SIGNUP, json=body())).json()["id"]
    async with container.core_db.read() as conn:
        assert await conn.scalar(_channel_of(user_id)) is None


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"email": 12345}, "email"),
    ({"email": "not-an-email"}, "email"),
    ({"email": "fan@example.test"}, "email"),
    ({"email": "fan@box.local"}, "email"),
    ({"email": "fan@localhost"}, "email"),
    ({"email": "fan@host.invalid"}, "email"),
    ({"email": "fan@site.example"}, "email"),
    ({"email": ...}, "email"),
    ({"password": "x" * 9}, "password"),
    ({"password": "x" * 129}, "password"),
    ({"password": 1234567890123}, "password"),
    ({"display_name": ""}, "display_name"),
    ({"display_name": "    "}, "display_name"),
    ({"display_name": "x" * 51}, "display_name"),
    ({"display_name": "nul\x00name"}, "display_name"),
    ({"role": "admin"}, "role"),
    ({"role": "owner"}, "role"),
    ({"role": ...}, "role"),
    ({"language": "fr"}, "language"),
    ({"language": None}, "language"),
    ({"is_admin": True}, "is_admin"),
]

BROKEN: list[bytes] = [
    b'{"email":"a@example.com","password":"abcdefghij\\ud800","display_name":"F","role":"viewer"}',
    b'{"email":"a@example.com","password":"abcdefghij","display_name":"\\ud800","role":"viewer"}',
    b'{"email":"a\\ud800@example.com","password":"abcdefghij","display_name":"F","role":"viewer"}',
    b'{"email": "fan@example.com",',
    b"[]",
]


# One database per backend for the whole table: the cases share nothing but the setup.
async def test_signup_refuses_invalid_input_with_the_reason(client: httpx.AsyncClient) -> None:
    for changes, where in INVALID:
        r = await client.post(SIGNUP, json=body(**changes))
        assert r.status_code == 422, (changes, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["type"].endswith("/invalid-input")
        assert problem["detail"].startswith(f"{where}:"), (changes, problem["detail"])


async def test_signup_refuses_broken_json_and_lone_surrogates(client: httpx.AsyncClient) -> None:
    for raw in BROKEN:
        r = await client.post(SIGNUP, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, (raw, r.text)


async def test_signup_accepts_boundary_lengths(client: httpx.AsyncClient) -> None:
    ok = [
        body(email="a@example.com", password="x" * 10, display_name="x"),
        body(email="b@example.com", password="y" * 128, display_name="가" * 50),
    ]
    for data in ok:
        r = await client.post(SIGNUP, json=data)
        assert r.status_code == 201, r.text


async def test_duplicate_email_is_409_whatever_its_case(client: httpx.AsyncClient) -> None:
    assert (await client.post(SIGNUP, json=body(email="Fan@Example.com"))).status_code == 201
    r = await client.post(SIGNUP, json=body(email="fAN@EXAMPLE.COM", role="streamer"))
    assert r.status_code == 409
    assert r.json()["type"].endswith("/email-taken")


async def test_concurrent_duplicate_signups_give_one_account_and_one_409(
    client: httpx.AsyncClient,
) -> None:
    emails = ["race@example.com", "RACE@example.com", "Race@Example.com", "race@EXAMPLE.com"]
    results = await asyncio.gather(*(client.post(SIGNUP, json=body(email=e)) for e in emails))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
