"""The streamer's OBS overlay: secret token, open missions, and the events it shows."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import channels, members, missions, pledges
from missionlink.domain import events
from missionlink.domain.errors import NotFound
from missionlink.domain.missions import Status, effective_status
from missionlink.domain.timestamps import iso
from missionlink.services.mission_views import public_backer, public_message, totals, view_of

OPEN_MISSIONS_SHOWN = 20
#: On reconnect (``Last-Event-ID``), pledges missed this recently are replayed as alerts.
REPLAY_SECONDS = 300
REPLAY_MAX = 50
MISSION_TOPICS = frozenset(
    {events.MISSION_CREATED, events.MISSION_ACCEPTED, events.MISSION_ENDED,
     events.MISSION_SETTLED}
)


def overlay_url(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + "/overlay/" + token


def new_token() -> str:
    return secrets.token_urlsafe(24)


async def token_of(conn: AsyncConnection, streamer_id: int) -> str:
    token = await conn.scalar(
        select(channels.c.overlay_token).where(channels.c.streamer_id == streamer_id)
    )
    if token is None:
        raise NotFound("you have no channel")
    return str(token)


async def rotate(conn: AsyncConnection, streamer_id: int, now: datetime) -> str:
    token = new_token()
    result = await conn.execute(
        update(channels)
        .where(channels.c.streamer_id == streamer_id)
        .values(overlay_token=token, updated_at=now)
    )
    if not result.rowcount:
        raise NotFound("you have no channel")
    return token


async def channel_of(conn: AsyncConnection, token: str) -> int | None:
    """The streamer whose overlay this token opens, or None."""
    found = await conn.scalar(
        select(channels.c.streamer_id).where(channels.c.overlay_token == token)
    )
    return int(found) if found is not None else None


async def touch_live(conn: AsyncConnection, streamer_id: int, token: str, now: datetime) -> bool:
    """Mark the channel live; False when the token no longer opens it (rotated)."""
    result = await conn.execute(
        update(channels)
        .where(channels.c.streamer_id == streamer_id, channels.c.overlay_token == token)
        .values(live_at=now)
    )
    return bool(result.rowcount)


def mission_card(row: Row[Any], total: int, backers: int, now: datetime) -> dict[str, Any]:
    """What the overlay shows of a mission (no description: it stays small).

    ``ends_at`` is when it stops being open: the acceptance timeout while it is pending.
    """
    status = effective_status(view_of(row), now)
    ends_at = min(row.accept_by, row.deadline_at) if status is Status.pending else row.deadline_at
    return {
        "id": row.id,
        "title": row.title,
        "status": status.value,
        "total_pledged": total,
        "backers": backers,
        "accept_by": iso(row.accept_by),
        "deadline_at": iso(row.deadline_at),
        "ends_at": iso(ends_at),
    }


async def _cards(conn: AsyncConnection, rows: Sequence[Row[Any]], now: datetime) -> list[
    dict[str, Any]
]:
    sums = await totals(conn, [r.id for r in rows])
    return [mission_card(r, *sums.get(r.id, (0, 0)), now) for r in rows]


async def open_missions(
    conn: AsyncConnection, streamer_id: int, now: datetime
) -> list[dict[str, Any]]:
    """Pending and accepted missions still before their deadline, soonest first."""
    still_open = and_(
        missions.c.streamer_id == streamer_id,
        missions.c.deadline_at > now,
        or_(
            missions.c.status == Status.accepted.value,
            and_(missions.c.status == Status.pending.value, missions.c.accept_by > now),
        ),
    )
    rows = list(
        await conn.execute(
            select(missions)
            .where(still_open)
            .order_by(missions.c.deadline_at, missions.c.id)
            .limit(OPEN_MISSIONS_SHOWN)
        )
    )
    return await _cards(conn, rows, now)


async def last_pledge_id(conn: AsyncConnection, streamer_id: int) -> int:
    found = await conn.scalar(
        select(func.max(pledges.c.id))
        .join(missions, missions.c.id == pledges.c.mission_id)
        .where(missions.c.streamer_id == streamer_id)
    )
    return int(found or 0)


async def snapshot(conn: AsyncConnection, streamer_id: int, now: datetime) -> dict[str, Any]:
    return {
        "type": "snapshot",
        "mission_id": None,
        "streamer_id": streamer_id,
        "server_time": iso(now),
        "missions": await open_missions(conn, streamer_id, now),
    }


async def missed_pledges(
    conn: AsyncConnection, streamer_id: int, after_id: int, now: datetime,
    *, mission_id: int | None = None,
) -> list[dict[str, Any]]:
    """Recent pledges after ``after_id``, oldest first, shaped like live pledge events
    (of one mission of the channel when ``mission_id`` is given)."""
    only = [] if mission_id is None else [pledges.c.mission_id == mission_id]
    earlier = pledges.alias("earlier")
    running_total = (
        select(func.sum(earlier.c.amount))
        .where(earlier.c.mission_id == pledges.c.mission_id, earlier.c.id <= pledges.c.id)
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(pledges, missions.c.title, members.c.display_name,
               running_total.label("total_pledged"))
        .join(missions, missions.c.id == pledges.c.mission_id)
        .outerjoin(members, members.c.user_id == pledges.c.user_id)
        .where(
            missions.c.streamer_id == streamer_id,
            pledges.c.id > after_id,
            pledges.c.created_at > now - timedelta(seconds=REPLAY_SECONDS),
            *only,
        )
        .order_by(pledges.c.id)
        .limit(REPLAY_MAX)
    )
    return [
        {
            "type": events.PLEDGE_CREATED,
            "mission_id": r.mission_id,
            "streamer_id": streamer_id,
            "pledge_id": r.id,
            **public_backer(r.user_id, r.display_name, anonymous=r.anonymous),
            "amount": r.amount,
            "total_pledged": int(r.total_pledged),
            **public_message(r.message, hidden=r.message_hidden_at is not None),
            "title": r.title,
            "at": iso(r.created_at),
            "replayed": True,
        }
        for r in rows
    ]


async def overlay_event(
    conn: AsyncConnection, topic: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """An outbox event as overlays receive it: typed, with the names and numbers to show."""
    event: dict[str, Any] = {**payload, "type": topic, "at": iso(now)}
    mission_id = payload.get("mission_id")
    if mission_id is None:
        return event
    row = (await conn.execute(select(missions).where(missions.c.id == mission_id))).first()
    if row is not None:
        event["title"] = row.title
        if topic in MISSION_TOPICS:
            event["mission"] = (await _cards(conn, [row], now))[0]
    if topic == events.PLEDGE_CREATED:
        anonymous = bool(payload.get("anonymous"))
        name = None if anonymous else await conn.scalar(
            select(members.c.display_name).where(members.c.user_id == payload.get("user_id"))
        )
        event.update(public_backer(payload.get("user_id"), name, anonymous=anonymous))
        event.update(public_message(payload.get("message"), hidden=False))
    return event
