"""The caller's own activity (the read side of My page): the missions they proposed, their
pledges and their bets, each with its mission's title and what came of it, newest first.

What came of it (``outcome``) is read from the mission and the journal, never guessed:

* ``open``: the mission is still pending or accepted;
* ``settling``: it has ended and its money has not moved yet (``settlement`` pending);
* for a proposed mission or a pledge, once settled: ``paid_out`` (a succeeded mission: the
  pledges went to the streamer) or ``refunded`` (every other end: the pledge came back,
  ``refunded`` holds the amount from its ``refund:{pledge id}`` transfer);
* for a bet, once settled: ``won`` (``points_back`` from its ``bet_payout:{bet id}``
  transfer), ``refunded`` (no winner, or no result: ``bet_refund:{bet id}``) or ``lost``.

``settled=True`` keeps the pledges and bets whose mission is settled: the results a backer
has to see (My page's "recent results").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import bets, missions, pledges, transfers
from missionlink.domain.missions import MissionView, Status, effective_status
from missionlink.domain.timestamps import iso
from missionlink.services.mission_views import list_missions, mission_outcome

Page = tuple[list[dict[str, Any]], int | None]


async def my_missions(
    conn: AsyncConnection, *, user_id: int, now: datetime, limit: int, before_id: int | None
) -> Page:
    items, nxt = await list_missions(conn, now=now, limit=limit, before_id=before_id,
                                     streamer_id=None, status=None, creator_id=user_id)
    return items, nxt


_MISSION_COLS = (missions.c.title, missions.c.status, missions.c.settlement,
                 missions.c.streamer_id, missions.c.ended_at, missions.c.reject_reason)


def _mission_fields(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "mission_id": row.mission_id,
        "mission_title": row.title,
        "mission_status": _status(row, now),
        "settlement": row.settlement,
        "streamer_id": row.streamer_id,
        "ended_at": iso(row.ended_at),
        "reject_reason": row.reject_reason,
    }


def _status(row: Any, now: datetime) -> str:
    """The status as the mission's own view shows it (an overdue open mission reads
    ``expired`` before the sweep moves it)."""
    view = MissionView(
        id=row.mission_id, streamer_id=row.streamer_id, creator_id=row.creator_id,
        status=Status(row.status), accept_by=row.accept_by, deadline_at=row.deadline_at,
        accepted_at=row.accepted_at, result_by=row.result_by or row.deadline_at,
    )
    return effective_status(view, now).value


async def _amounts(conn: AsyncConnection, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    rows = await conn.execute(select(transfers.c.id, transfers.c.amount)
                              .where(transfers.c.id.in_(ids)))
    return {r.id: int(r.amount) for r in rows}


async def _rows_with_missions(
    conn: AsyncConnection, table: Table, columns: tuple[Any, ...], *, user_id: int,
    limit: int, before_id: int | None, settled: bool,
) -> tuple[list[Any], bool]:
    """A page of the caller's rows of ``table`` (pledges or bets) with their missions,
    newest first, and whether older rows follow."""
    stmt = (
        select(table.c.id, table.c.mission_id, *columns, table.c.created_at,
               *_MISSION_COLS, missions.c.creator_id, missions.c.accept_by,
               missions.c.deadline_at, missions.c.accepted_at, missions.c.result_by)
        .select_from(table.join(missions, missions.c.id == table.c.mission_id))
        .where(table.c.user_id == user_id)
        .order_by(table.c.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        stmt = stmt.where(table.c.id < before_id)
    if settled:
        stmt = stmt.where(missions.c.settlement == "settled")
    rows = list(await conn.execute(stmt))
    return rows[:limit], len(rows) > limit


async def my_pledges(
    conn: AsyncConnection, *, user_id: int, now: datetime, limit: int, before_id: int | None,
    settled: bool = False,
) -> Page:
    page, more = await _rows_with_missions(conn, pledges, (pledges.c.amount,), user_id=user_id,
                                           limit=limit, before_id=before_id, settled=settled)
    refunds = await _amounts(conn, [f"refund:{r.id}" for r in page])
    items = []
    for r in page:
        item = {"id": r.id, "amount": int(r.amount), "created_at": iso(r.created_at),
                **_mission_fields(r, now)}
        item["outcome"] = mission_outcome(item["mission_status"], r.settlement)
        item["refunded"] = refunds.get(f"refund:{r.id}", 0)
        items.append(item)
    return items, (page[-1].id if more else None)


async def my_bets(
    conn: AsyncConnection, *, user_id: int, now: datetime, limit: int, before_id: int | None,
    settled: bool = False,
) -> Page:
    page, more = await _rows_with_missions(conn, bets, (bets.c.side, bets.c.points),
                                           user_id=user_id, limit=limit, before_id=before_id,
                                           settled=settled)
    back = await _amounts(conn, [f"{kind}:{r.id}" for r in page
                                 for kind in ("bet_payout", "bet_refund")])
    items = []
    for r in page:
        item = {"id": r.id, "side": r.side, "points": int(r.points),
                "created_at": iso(r.created_at), **_mission_fields(r, now)}
        outcome = mission_outcome(item["mission_status"], r.settlement)
        points_back = 0
        if outcome not in ("open", "settling"):
            if f"bet_payout:{r.id}" in back:
                outcome, points_back = "won", back[f"bet_payout:{r.id}"]
            elif f"bet_refund:{r.id}" in back:
                outcome, points_back = "refunded", back[f"bet_refund:{r.id}"]
            else:
                outcome = "lost"
        item["outcome"] = outcome
        item["points_back"] = points_back
        items.append(item)
    return items, (page[-1].id if more else None)
