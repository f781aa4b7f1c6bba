"""Admin creation from the CLI, and logins that repair what a crash left behind."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import insert, select

from missionlink import cli
from missionlink.adapters.db.core_tables import members, wallets
from missionlink.adapters.db.identity_tables import users
from missionlink.bootstrap import Container
from missionlink.cli import create_admin

PASSWORD = "correct horse battery"


async def login_as(client: httpx.AsyncClient, email: str) -> dict[str, object]:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    profile: dict[str, object] = me.json()
    return profile


async def test_admin_create_from_the_cli(
    client: httpx.AsyncClient,
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = container.settings
    env = {
        "MISSIONLINK_DATA_DIR": str(settings.data_dir),
        "MISSIONLINK_DATABASE_URL": settings.database_url,
        "MISSIONLINK_IDENTITY_DATABASE_URL": settings.identity_database_url,
        "MISSIONLINK_ARGON2_TIME_COST": "1",
        "MISSIONLINK_ARGON2_MEMORY_KIB": "8",
        "MISSIONLINK_ADMIN_PASSWORD": PASSWORD,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = ["admin", "create", "--email", "Root@Example.com", "--name", "Root"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    assert "admin created: id=" in capsys.readouterr().out
    profile = await login_as(client, "root@example.com")
    assert (profile["role"], profile["display_name"]) == ("admin", "Root")
    async with container.core_db.read() as conn:
        role = await conn.scalar(select(members.c.role).where(members.c.user_id == profile["id"]))
    assert role == "admin"


async def test_create_admin_refuses_a_taken_email_or_a_short_password(
    client: httpx.AsyncClient, container: Container
) -> None:
    settings = container.settings
    user_id = await create_admin(
        settings, email="admin@example.com", password=PASSWORD, display_name="Admin"
    )
    assert (await login_as(client, "admin@example.com"))["id"] == user_id
    with pytest.raises(SystemExit, match="already registered"):
        await create_admin(
            settings, email="ADMIN@example.com", password=PASSWORD, display_name="Again"
        )
    with pytest.raises(SystemExit, match="password"):
        await create_admin(settings, email="x@example.com", password="short", display_name="X")


async def test_login_opens_the_wallet_a_crash_left_missing(
    client: httpx.AsyncClient, container: Container
) -> None:
    # The identity database committed the user; the process died before the core did.
    password_hash = container.passwords.hash(PASSWORD)
    async with container.identity_db.begin() as conn:
        result = await conn.execute(
            insert(users)
            .values(
                email="orphan@example.com",
                email_normalized="orphan@example.com",
                password_hash=password_hash,
                display_name="Orphan",
                role="streamer",
                language="en",
                created_at=container.clock.now(),
            )
            .returning(users.c.id)
        )
        user_id = result.scalar_one()
    await login_as(client, "orphan@example.com")
    await login_as(client, "orphan@example.com")  # the second login is a no-op
    async with container.core_db.read() as conn:
        points = await conn.scalar(
            select(wallets.c.points_balance).where(wallets.c.user_id == user_id)
        )
    assert points == container.settings.signup_points


async def test_login_upgrades_a_hash_made_with_older_parameters(
    client: httpx.AsyncClient, container: Container
) -> None:
    data = {"email": "fan@example.com", "password": PASSWORD, "display_name": "F", "role": "viewer"}
    assert (await client.post("/api/v1/auth/signup", json=data)).status_code == 201
    old = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    async with container.identity_db.begin() as conn:
        await conn.execute(users.update().values(password_hash=old))
    await login_as(client, "fan@example.com")
    async with container.identity_db.read() as conn:
        stored = await conn.scalar(select(users.c.password_hash))
    assert isinstance(stored, str)
    assert stored != old
    assert not container.passwords.check_needs_rehash(stored)
    await login_as(client, "fan@example.com")
