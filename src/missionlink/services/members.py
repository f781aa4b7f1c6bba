"""Core-side records of a user: profile copy, wallet, channel, signup bonus."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal
from missionlink.adapters.db.core_tables import channels, members, wallets
from missionlink.adapters.db.sql import insert_ignore
from missionlink.domain.ledger import PLATFORM_POINTS_ACCOUNT, PTS, TransferKind, user_points

DEFAULT_ACCEPT_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class MemberDefaults:
    """What a new member starts with: signup points, and a new channel's settings."""

    signup_points: int
    min_mission_amount: int
    accept_timeout_seconds: int

    @classmethod
    def within(cls, *, signup_points: int, min_pledge: int,
               max_mission_seconds: int) -> MemberDefaults:
        """A channel starts at the smallest pledge and the default acceptance timeout (no
        longer than the longest mission)."""
        return cls(signup_points, min_pledge,
                   min(DEFAULT_ACCEPT_TIMEOUT_SECONDS, max_mission_seconds))


async def open_member(
    conn: AsyncConnection,
    *,
    defaults: MemberDefaults,
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
    if defaults.signup_points > 0:
        await journal.post(
            conn,
            kind=TransferKind.signup_bonus,
            currency=PTS,
            from_account=PLATFORM_POINTS_ACCOUNT,
            to_account=user_points(user_id),
            amount=defaults.signup_points,
            now=now,
            transfer_id=f"signup_bonus:{user_id}",
        )
        await journal.credit_wallet(conn, user_id, PTS, defaults.signup_points)
    if role == "streamer":
        await insert_ignore(
            conn,
            channels,
            {
                "streamer_id": user_id,
                "missions_enabled": True,
                "min_mission_amount": defaults.min_mission_amount,
                "accept_timeout_seconds": defaults.accept_timeout_seconds,
                "overlay_token": secrets.token_urlsafe(24),
                "updated_at": now,
            },
        )
    return True


async def member_exists(conn: AsyncConnection, user_id: int) -> bool:
    row = await conn.execute(select(members.c.user_id).where(members.c.user_id == user_id))
    return row.first() is not None
