"""``missionlink admin create``: the only way to make an admin account."""

from __future__ import annotations

import asyncio

from missionlink import bootstrap
from missionlink.config import Settings
from missionlink.domain.errors import DomainError
from missionlink.services import identity


async def create_admin(settings: Settings, *, email: str, password: str, display_name: str) -> int:
    """Create an admin in the identity database and their member records in the core."""
    if settings.embedded:
        # Like `serve`, bring the embedded SQLite default up to date on first use.
        from missionlink.migrations.runner import upgrade_all

        await asyncio.to_thread(upgrade_all, settings)
    container = bootstrap.build(settings)
    try:
        user = await identity.register(
            container,
            email=email,
            password=password,
            display_name=display_name,
            role="admin",
            language="ko",
        )
    except DomainError as exc:
        raise SystemExit(f"missionlink: cannot create the admin: {exc.detail}") from exc
    finally:
        await container.close()
    return user.id
