"""Mission views (the read side): the API's mission shape, lists and backers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import members, mission_totals, missions, pledges
from missionlink.domain.errors import NotFound
from missionlink.domain.ledger import fee_for
from missionlink.domain.missions import OPEN, MissionView, Status, effective_status
from missionlink.domain.timestamps import iso


def view_of(row: Row[Any]) -> MissionView:
    return MissionView(
        id=row.id,
        streamer_id=row.streamer_id,
        creator_id=row.creator_id,
        status=Status(row.status),
        accept_by=row.accept_by,
        deadline_at=row.deadline_at,
        accepted_at=row.accepted_at,
        result_by=result_by(row),
    )


def result_by(row: Row[Any]) -> datetime:
    """Until when the result may be declared; NULL in the table means no grace period."""
    value: datetime = row.result_by or row.deadline_at
    return value


def mission_outcome(status: str, settlement: str | None) -> str:
    """What came of a mission for its proposer and backers: ``open``, ``settling`` (ended,
    money not moved yet), then ``paid_out`` (succeeded) or ``refunded`` (any other end)."""
    if Status(status) in OPEN:
        return "open"
    if settlement != "settled":
        return "settling"
    return "paid_out" if status == Status.succeeded.value else "refunded"


def payout_breakdown(gross: int, fee_bps: int) -> dict[str, int]:
    """A payout as the streamer is paid it: ``gross`` pledged, the ``fee``, the ``net``."""
    fee = fee_for(gross, fee_bps)
    return {"gross": gross, "fee": fee, "fee_bps": fee_bps, "net": gross - fee}


def mission_out(
    row: Row[Any], total_pledged: int, pledge_count: int, now: datetime
) -> dict[str, Any]:
    status = effective_status(view_of(row), now).value
    outcome = mission_outcome(status, row.settlement)
    return {
        "id": row.id,
        "streamer_id": row.streamer_id,
        "streamer_name": row.streamer_name,
        "creator_id": row.creator_id,
        "creator_name": row.creator_name,
        "title": row.title,
        "description": row.description,
        "status": status,
        "total_pledged": total_pledged,
        "pledge_count": pledge_count,
        "fee_bps": row.fee_bps,
        "created_at": iso(row.created_at),
        "accept_by": iso(row.accept_by),
        "deadline_at": iso(row.deadline_at),
        "result_by": iso(result_by(row)),
        "accepted_at": iso(row.accepted_at),
        "ended_at": iso(row.ended_at),
        "settlement": row.settlement,
        "reject_reason": row.reject_reason,
        "outcome": outcome,
        # The escrow holds exactly the pledges, so the settled payout is this (settlement.py).
        "payout": (payout_breakdown(total_pledged, row.fee_bps)
                   if outcome == "paid_out" else None),
    }


async def totals(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(total pledged, number of pledges) per mission, from the sharded running totals."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(
            mission_totals.c.mission_id,
            func.coalesce(func.sum(mission_totals.c.amount), 0),
            func.coalesce(func.sum(mission_totals.c.pledges), 0),
        )
        .where(mission_totals.c.mission_id.in_(ids))
        .group_by(mission_totals.c.mission_id)
    )
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


_streamer = members.alias("streamer")
_creator = members.alias("creator")


def _with_names() -> Any:
    """Missions with their streamer's and creator's display names (same database)."""
    return select(
        missions,
        _streamer.c.display_name.label("streamer_name"),
        _creator.c.display_name.label("creator_name"),
    ).select_from(
        missions.outerjoin(_streamer, _streamer.c.user_id == missions.c.streamer_id).outerjoin(
            _creator, _creator.c.user_id == missions.c.creator_id
        )
    )


async def get_mission(conn: AsyncConnection, mission_id: int, now: datetime) -> dict[str, Any]:
    row = (await conn.execute(_with_names().where(missions.c.id == mission_id))).first()
    if row is None:
        raise NotFound(f"mission {mission_id} does not exist")
    total, count = (await totals(conn, [mission_id])).get(mission_id, (0, 0))
    return mission_out(row, total, count, now)


def overdue_filter(now: datetime) -> Any:
    """Open missions that read ``expired`` at ``now`` (``domain.missions.expires_at``)."""
    # result_by >= deadline_at (a check; NULL reads as the deadline): the deadline term
    # lets the status/deadline index narrow the accepted ones too.
    return or_(
        and_(missions.c.status == Status.pending.value,
             or_(missions.c.deadline_at <= now, missions.c.accept_by <= now)),
        and_(missions.c.status == Status.accepted.value,
             missions.c.deadline_at <= now,
             func.coalesce(missions.c.result_by, missions.c.deadline_at) <= now),
    )


def _status_filter(status: Status, now: datetime) -> Any:
    overdue = overdue_filter(now)
    if status is Status.expired:
        return or_(missions.c.status == Status.expired.value, overdue)
    if status in (Status.pending, Status.accepted):
        return and_(missions.c.status == status.value, ~overdue)
    return missions.c.status == status.value


async def list_missions(
    conn: AsyncConnection,
    *,
    now: datetime,
    limit: int,
    before_id: int | None,
    streamer_id: int | None,
    status: Status | None,
    creator_id: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    stmt = _with_names().order_by(missions.c.id.desc()).limit(limit + 1)
    if before_id is not None:
        stmt = stmt.where(missions.c.id < before_id)
    if streamer_id is not None:
        stmt = stmt.where(missions.c.streamer_id == streamer_id)
    if creator_id is not None:
        stmt = stmt.where(missions.c.creator_id == creator_id)
    if status is not None:
        stmt = stmt.where(_status_filter(status, now))
    rows = list(await conn.execute(stmt))
    page = rows[:limit]
    sums = await totals(conn, [r.id for r in page])
    items = [mission_out(r, *sums.get(r.id, (0, 0)), now) for r in page]
    next_id = page[-1].id if len(rows) > limit else None
    return items, next_id


def public_backer(user_id: int | None, display_name: str | None, *,
                  anonymous: bool) -> dict[str, Any]:
    """Who pledged, as the public sees it: nobody's name or id for an anonymous pledge."""
    if anonymous:
        return {"user_id": None, "display_name": None, "anonymous": True}
    return {"user_id": user_id, "display_name": display_name, "anonymous": False}


def public_message(message: str | None, *, hidden: bool) -> dict[str, Any]:
    """A pledge's message as the public sees it: none once the streamer hid it."""
    return {"message": None if hidden else message, "message_hidden": hidden}


async def list_backers(
    conn: AsyncConnection, mission_id: int, *, limit: int, before_id: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    exists = await conn.execute(select(missions.c.id).where(missions.c.id == mission_id))
    if exists.first() is None:
        raise NotFound(f"mission {mission_id} does not exist")
    stmt = (
        select(pledges.c.id, pledges.c.user_id, pledges.c.amount, pledges.c.created_at,
               pledges.c.message, pledges.c.anonymous, pledges.c.message_hidden_at,
               members.c.display_name)
        .join(members, members.c.user_id == pledges.c.user_id)
        .where(pledges.c.mission_id == mission_id)
        .order_by(pledges.c.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        stmt = stmt.where(pledges.c.id < before_id)
    rows = list(await conn.execute(stmt))
    page = rows[:limit]
    items = [
        {
            "id": r.id,
            **public_backer(r.user_id, r.display_name, anonymous=r.anonymous),
            "amount": r.amount,
            "created_at": iso(r.created_at),
            **public_message(r.message, hidden=r.message_hidden_at is not None),
        }
        for r in page
    ]
    return items, (page[-1].id if len(rows) > limit else None)
