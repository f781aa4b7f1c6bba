"""Channel settings, the streamer's public profile and the streamer directory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import channels, members
from missionlink.domain import profile
from missionlink.domain.board import like_pattern
from missionlink.domain.errors import FieldError, InvalidInput, NotFound, range_error

LIVE_SECONDS = 45
#: The shortest acceptance timeout a channel may set.
MIN_ACCEPT_TIMEOUT_SECONDS = 60


def settings_out(row: Any) -> dict[str, Any]:
    return {
        "missions_enabled": row.missions_enabled,
        "min_mission_amount": row.min_mission_amount,
        "accept_timeout_seconds": row.accept_timeout_seconds,
    }


async def check_mission_floor(
    conn: AsyncConnection, *, streamer_id: int, creator_id: int, amount: int
) -> None:
    """A proposal below the channel's minimum, refused with the minimum as a coded field
    error (``below-channel-minimum``, ``min``). Only where the proposal would otherwise
    reach that check: another's channel that exists and takes missions."""
    if creator_id == streamer_id:
        return
    row = (await conn.execute(
        select(channels.c.missions_enabled, channels.c.min_mission_amount)
        .where(channels.c.streamer_id == streamer_id))).first()
    if row is not None and row.missions_enabled and amount < row.min_mission_amount:
        raise InvalidInput.of(
            "amount", "below-channel-minimum",
            f"this channel's missions start at {row.min_mission_amount} KRW",
            detail=f"this channel's missions start at {row.min_mission_amount} KRW",
            min=row.min_mission_amount)


async def get_settings(conn: AsyncConnection, streamer_id: int) -> dict[str, Any]:
    row = (
        await conn.execute(select(channels).where(channels.c.streamer_id == streamer_id))
    ).first()
    if row is None:
        raise NotFound("you have no channel")
    return settings_out(row)


async def update_settings(
    conn: AsyncConnection, *, streamer_id: int, changes: dict[str, Any], now: datetime,
    min_pledge: int, max_pledge: int, max_mission_seconds: int,
) -> dict[str, Any]:
    errors: list[FieldError | None] = []
    if "min_mission_amount" in changes:
        errors.append(range_error("min_mission_amount", changes["min_mission_amount"],
                                  min_pledge, max_pledge))
    if "accept_timeout_seconds" in changes:
        errors.append(range_error("accept_timeout_seconds", changes["accept_timeout_seconds"],
                                  MIN_ACCEPT_TIMEOUT_SECONDS, max_mission_seconds))
    InvalidInput.raise_any(errors)
    row = await _update_channel(conn, streamer_id, changes, now)
    return settings_out(row)


async def _update_channel(conn: AsyncConnection, streamer_id: int, changes: dict[str, Any],
                          now: datetime) -> Any:
    """The streamer's channel row after ``changes``; 404 without a channel."""
    row = (
        await conn.execute(
            update(channels)
            .where(channels.c.streamer_id == streamer_id)
            .values(**changes, updated_at=now)
            .returning(*channels.c)
        )
    ).first()
    if row is None:
        raise NotFound("you have no channel")
    return row


def profile_out(row: Any) -> dict[str, Any]:
    return {"intro": row.intro, "link": row.link, "link_platform": profile.platform_of(row.link)}


async def get_profile(conn: AsyncConnection, streamer_id: int) -> dict[str, Any]:
    row = (
        await conn.execute(select(channels).where(channels.c.streamer_id == streamer_id))
    ).first()
    if row is None:
        raise NotFound("you have no channel")
    return profile_out(row)


async def update_profile(
    conn: AsyncConnection, *, streamer_id: int, intro: str | None, link: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Change the intro and/or the link (``""`` removes it); ``None`` leaves one as it is."""
    changes: dict[str, Any] = {}
    if intro is not None:
        changes["intro"] = profile.check_intro(intro)
    if link is not None:
        checked = profile.check_link(link)
        changes["link"] = checked.url if checked else None
    row = await _update_channel(conn, streamer_id, changes, now)
    return profile_out(row)


def streamer_out(row: Any, now: datetime) -> dict[str, Any]:
    live_at = getattr(row, "live_at", None)
    return {
        "id": row.streamer_id,
        "display_name": row.display_name,
        "missions_enabled": row.missions_enabled,
        "min_mission_amount": row.min_mission_amount,
        "accept_timeout_seconds": row.accept_timeout_seconds,
        "live": bool(live_at and (now - live_at).total_seconds() < LIVE_SECONDS),
        **profile_out(row),
    }


def _directory() -> Any:
    return select(channels, members.c.display_name).join(
        members, members.c.user_id == channels.c.streamer_id
    )


async def list_streamers(
    conn: AsyncConnection, *, now: datetime, limit: int, after_id: int | None,
    query: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the directory, in channel order; ``query`` keeps the streamers whose
    display name contains it, case-insensitively (``%`` and ``_`` are literal)."""
    stmt = _directory().order_by(channels.c.streamer_id).limit(limit + 1)
    if after_id is not None:
        stmt = stmt.where(channels.c.streamer_id > after_id)
    if query:
        stmt = stmt.where(members.c.display_name.ilike(like_pattern(query), escape="\\"))
    rows = list(await conn.execute(stmt))
    page = rows[:limit]
    nxt = page[-1].streamer_id if len(rows) > limit else None
    return [streamer_out(r, now) for r in page], nxt


async def get_streamer(conn: AsyncConnection, streamer_id: int, now: datetime) -> dict[str, Any]:
    row = (
        await conn.execute(_directory().where(channels.c.streamer_id == streamer_id))
    ).first()
    if row is None:
        raise NotFound(f"streamer {streamer_id} does not exist")
    return streamer_out(row, now)
