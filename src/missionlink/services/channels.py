"""Channel settings, the streamer's public profile and the streamer directory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import channels, members
from missionlink.domain import profile
from missionlink.domain.board import like_pattern
from missionlink.domain.errors import InvalidInput, NotFound

LIVE_SECONDS = 45


def settings_out(row: Any) -> dict[str, Any]:
    return {
        "missions_enabled": row.missions_enabled,
        "min_mission_amount": row.min_mission_amount,
        "accept_timeout_seconds": row.accept_timeout_seconds,
    }


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
    if "min_mission_amount" in changes:
        amount = changes["min_mission_amount"]
        if not min_pledge <= amount <= max_pledge:
            raise InvalidInput(
                f"min_mission_amount must be between {min_pledge} and "
                f"{max_pledge}"
            )
    if "accept_timeout_seconds" in changes:
        timeout = changes["accept_timeout_seconds"]
        if not 60 <= timeout <= max_mission_seconds:
            raise InvalidInput(
                f"accept_timeout_seconds must be between 60 and {max_mission_seconds}"
            )
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
    return settings_out(row)


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
