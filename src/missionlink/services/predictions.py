"""Predictions: stake points on a mission's outcome; pools and the caller's stake."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal, outbox
from missionlink.adapters.db.core_tables import bets, missions, wallets
from missionlink.domain import ledger as L
from missionlink.domain.errors import Conflict, InvalidInput, NotFound
from missionlink.domain.missions import Action, check_action
from missionlink.domain.timestamps import iso
from missionlink.services.mission_views import view_of
from missionlink.services.missions import lock_shared

SIDES = ("success", "failure")


async def place_bet(
    conn: AsyncConnection,
    *,
    bet_window_seconds: int,
    now: datetime,
    user_id: int,
    mission_id: int,
    side: str,
    points: int,
) -> dict[str, Any]:
    if side not in SIDES:
        raise InvalidInput.of("side", "not-allowed", "must be 'success' or 'failure'",
                              detail="side must be 'success' or 'failure'",
                              allowed=list(SIDES))
    if points <= 0:
        raise InvalidInput.of("points", "too-small", "must be a positive integer",
                              detail="points must be a positive integer", min=1)
    row = await lock_shared(conn, mission_id)
    check_action(
        view_of(row), Action.bet, user_id, now, bet_window_seconds=bet_window_seconds
    )
    # One user's bets on one mission run one at a time: without the wallet row's lock, two
    # first bets at once both found no bet, and the second insert broke the one-bet-per-
    # user unique key (a 500) instead of adding to the first. The lock is the one the debit
    # below takes anyway (mission, then wallet: the order pledges use); the bet is read
    # after it, so it sees the bet of whoever held it.
    await conn.execute(
        select(wallets.c.user_id).where(wallets.c.user_id == user_id).with_for_update()
    )
    existing = (
        await conn.execute(
            select(bets).where(bets.c.mission_id == mission_id, bets.c.user_id == user_id)
        )
    ).first()
    if existing is not None and existing.side != side:
        raise Conflict(f"you already bet on {existing.side}; one side per mission")
    await journal.debit_wallet(conn, user_id, L.PTS, points)
    if existing is None:
        bet_id = await conn.scalar(
            insert(bets)
            .values(mission_id=mission_id, user_id=user_id, side=side, points=points,
                    created_at=now, updated_at=now)
            .returning(bets.c.id)
        )
        total = points
    else:
        bet_id = existing.id
        total = int(
            await conn.scalar(
                update(bets)
                .where(bets.c.id == existing.id)
                .values(points=bets.c.points + points, updated_at=now)
                .returning(bets.c.points)
            )
            or 0
        )
    await journal.post(
        conn,
        kind=L.TransferKind.bet,
        currency=L.PTS,
        from_account=L.user_points(user_id),
        to_account=L.stake_pool(mission_id),
        amount=points,
        now=now,
        mission_id=mission_id,
    )
    await outbox.emit(
        conn,
        outbox.BET_PLACED,
        {"mission_id": mission_id, "streamer_id": row.streamer_id, "side": side,
         "points": points},
        now,
    )
    return {"id": bet_id, "mission_id": mission_id, "user_id": user_id, "side": side,
            "points": total, "added": points, "created_at": iso(now)}


async def prediction(
    conn: AsyncConnection, *, mission_id: int, viewer_id: int | None
) -> dict[str, Any]:
    found = await conn.execute(select(missions.c.id).where(missions.c.id == mission_id))
    if found.first() is None:
        raise NotFound(f"mission {mission_id} does not exist")
    rows = await conn.execute(
        select(bets.c.side, func.coalesce(func.sum(bets.c.points), 0), func.count())
        .where(bets.c.mission_id == mission_id)
        .group_by(bets.c.side)
    )
    pools = dict.fromkeys(SIDES, (0, 0))
    for side, pool, count in rows:
        pools[side] = (int(pool), int(count))
    total = pools["success"][0] + pools["failure"][0]
    mine = None
    if viewer_id is not None:
        own = (
            await conn.execute(
                select(bets.c.side, bets.c.points).where(
                    bets.c.mission_id == mission_id, bets.c.user_id == viewer_id
                )
            )
        ).first()
        if own is not None:
            mine = {"side": own.side, "points": own.points}

    def ratio(side: str) -> float | None:
        pool = pools[side][0]
        return round(total / pool, 4) if pool else None

    return {
        "mission_id": mission_id,
        "success_pool": pools["success"][0],
        "failure_pool": pools["failure"][0],
        "total_pool": total,
        "success_bettors": pools["success"][1],
        "failure_bettors": pools["failure"][1],
        "success_payout_ratio": ratio("success"),
        "failure_payout_ratio": ratio("failure"),
        "my_bet": mine,
    }
