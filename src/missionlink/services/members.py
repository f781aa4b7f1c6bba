"""Core-side records of a user: profile copy, wallet, channel, signup bonus."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal
from missionlink.adapters.db.core_tables import channels, members, wallets
from missionlink.adapters.db.sql import insert_ignore
from missionlink.config import Settings
from missionlink.domain.ledger import PLATFORM_POINTS_ACCOUNT, PTS, TransferKind, user_points

DEFAULT_ACCEPT_TIMEOUT_SECONDS = 3600


async def open_member(
    conn: AsyncConnection,
    *,
    settings: Settings,
    user_id: int,
    display_name: str,
    role: str,
    now: datetime,
) -> bool:
    """Create the member, wallet (with signup points) and channel; a no-op when they exist.

    Called after the identity database commits a new user; safe to call again (for example
    on login) if the process died between the two databases.
    """
    created = await insert_ignore(
        conn,
        members,
        {"user_id": user_id, "display_name": display_name, "role": role, "created_at": now},
    )
    if not created:
        return False
    await insert_ignore(conn, wallets, {"user_id": user_id, "cash_balance": 0, "points_balance": 0})
    if settings.signup_points > 0:
        await journal.post(
            conn,
            kind=TransferKind.signup_bonus,
            currency=PTS,
            from_account=PLATFORM_POINTS_ACCOUNT,
            to_account=user_points(user_id),
            amount=settings.signup_points,
            now=now,
            transfer_id=f"signup_bonus:{user_id}",
        )
        await journal.credit_wallet(conn, user_id, PTS, settings.signup_points)
    if role == "streamer":
        await insert_ignore(
            conn,
            channels,
            {
                "streamer_id": user_id,
                "missions_enabled": True,
                "min_mission_amount": settings.min_pledge,
                "accept_timeout_seconds": min(
                    DEFAULT_ACCEPT_TIMEOUT_SECONDS, settings.max_mission_seconds
                ),
                "overlay_token": secrets.token_urlsafe(24),
                "updated_at": now,
            },
        )
    return True


async def member_exists(conn: AsyncConnection, user_id: int) -> bool:
    row = await conn.execute(select(members.c.user_id).where(members.c.user_id == user_id))
    return row.first() is not None
