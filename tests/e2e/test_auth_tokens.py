"""Login, access-token claims and GET /api/v1/me."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any, Literal

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from missionlink.adapters.security.tokens import load_or_create_key
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock

PASSWORD = "correct horse battery"

# The backend plays no part here: run on SQLite only to keep the suite fast.
SQLITE_ONLY = pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)


async def signup(client: httpx.AsyncClient, email: str, role: str = "viewer") -> dict[str, Any]:
    data = {"email": email, "password": PASSWORD, "display_name": "Fan", "role": role}
    r = await client.post("/api/v1/auth/signup", json=data)
    assert r.status_code == 201, r.text
    user: dict[str, Any] = r.json()
    return user


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


def private_key(container: Container) -> Ed25519PrivateKey:
    settings = container.settings
    key = load_or_create_key(settings.jwt_private_key, settings.data_dir)
    assert isinstance(key, Ed25519PrivateKey)
    return key


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


async def test_login_returns_a_bearer_pair(client: httpx.AsyncClient, container: Container) -> None:
    await signup(client, "fan@example.com")
    r = await login(client, "FAN@example.com")
    assert r.status_code == 200, r.text
    pair = r.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == container.settings.access_token_seconds
    assert pair["refresh_token"]
    assert pair["access_token"].count(".") == 2
    assert "set-cookie" not in r.headers


@SQLITE_ONLY
async def test_access_token_is_an_eddsa_jwt_with_every_claim(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    user = await signup(client, "streamer@example.com", role="streamer")
    token = (await login(client, "streamer@example.com")).json()["access_token"]
    settings = container.settings
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    claims = jwt.decode(
        token,
        private_key(container).public_key(),
        algorithms=["EdDSA"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    now = int(clock.now().timestamp())
    assert claims["sub"] == str(user["id"])
    assert claims["role"] == "streamer"
    assert claims["iat"] == now
    assert claims["exp"] == now + settings.access_token_seconds


async def test_me_returns_the_caller(client: httpx.AsyncClient) -> None:
    user = await signup(client, "Me@Example.com")
    token = (await login(client, "me@example.com")).json()["access_token"]
    r = await me(client, token)
    assert r.status_code == 200, r.text
    assert r.json() == user


@SQLITE_ONLY
async def test_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer not.a.jwt"}):
        r = await client.get("/api/v1/me", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"] == "Bearer"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@SQLITE_ONLY
async def test_forged_wrong_audience_and_expired_tokens_are_401(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    user = await signup(client, "fan@example.com")
    settings = container.settings
    now = int(clock.now().timestamp())
    claims = {
        "sub": str(user["id"]),
        "role": "viewer",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 600,
    }
    key = private_key(container)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert (await me(client, jwt.encode(claims, key, algorithm="EdDSA"))).status_code == 200
    bad = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "HS256 keyed with the public key": _hs256(claims, public_pem),
        "wrong audience": jwt.encode({**claims, "aud": "other-api"}, key, algorithm="EdDSA"),
        "wrong issuer": jwt.encode({**claims, "iss": "someone-else"}, key, algorithm="EdDSA"),
        "no sub": jwt.encode(
            {k: v for k, v in claims.items() if k != "sub"}, key, algorithm="EdDSA"
        ),
        "other key": jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        "expired": container.tokens.issue(user["id"], "viewer", clock.now() - timedelta(hours=1)),
    }
    for why, token in bad.items():
        r = await me(client, token)
        assert r.status_code == 401, why


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


async def test_login_with_a_wrong_password_is_401(client: httpx.AsyncClient) -> None:
    await signup(client, "fan@example.com")
    r = await login(client, "fan@example.com", "wrong horse battery")
    assert r.status_code == 401
    assert r.json()["detail"] == "wrong email or password"


async def test_login_with_an_unknown_email_is_the_same_401_after_one_hash(
    client: httpx.AsyncClient, container: Container
) -> None:
    verifications: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verifications.append(str(password))
            return super().verify(hash, password)

    container.passwords = CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    emails = ("nobody@example.com", "not an email", "nul\x00@example.com")
    for email in emails:
        r = await login(client, email)
        assert r.status_code == 401, email
        assert r.json()["detail"] == "wrong email or password"
    assert verifications == [PASSWORD] * len(emails)


@SQLITE_ONLY
async def test_login_refuses_wrong_types_and_extra_fields(client: httpx.AsyncClient) -> None:
    bodies: list[dict[str, Any]] = [
        {"email": 1, "password": PASSWORD},
        {"email": "fan@example.com"},
        {"email": "fan@example.com", "password": PASSWORD, "remember": True},
    ]
    for body in bodies:
        r = await client.post("/api/v1/auth/login", json=body)
        assert r.status_code == 422, body
