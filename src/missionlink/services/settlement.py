"""Settlement: move a terminal mission's escrow, pay predictions, queue result emails.

Everything is set-based SQL in one transaction, so a mission with 100,000 pledges settles
in a handful of statements, and transfer ids derived from the pledge or bet make a second
run impossible (the journal's primary key refuses it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    String,
    and_,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal, outbox
from missionlink.adapters.db.core_tables import (
    bets,
    email_jobs,
    missions,
    pledges,
    transfers,
    wallets,
)
from missionlink.domain import ledger as L
from missionlink.domain.missions import EARNS_PLEDGE_POINTS, Status

_TRANSFER_COLS = ["id", "kind", "currency", "from_account", "to_account", "amount",
                  "mission_id", "created_at"]


def _text(value: str) -> Any:
    return literal(value, String)


def _account(prefix: str, user_col: Any, suffix: str) -> Any:
    return _text(prefix) + cast(user_col, String) + _text(suffix)


async def settle(conn: AsyncConnection, mission_id: int, now: datetime) -> bool:
    """Settle once; False when the mission is not terminal or is already settled."""
    m = (
        await conn.execute(select(missions).where(missions.c.id == mission_id).with_for_update())
    ).first()
    if m is None or m.settlement != "pending":
        return False
    status = Status(m.status)
    if status is Status.succeeded:
        await _payout(conn, m, now)
    else:
        await _refund_pledges(conn, mission_id, now)
    if status in EARNS_PLEDGE_POINTS:
        await _award_pledge_points(conn, mission_id, now)
    winning = {"succeeded": "success", "failed": "failure"}.get(m.status)
    await _settle_bets(conn, mission_id, winning, now)
    await _queue_emails(conn, m, now)
    await conn.execute(
        update(missions)
        .where(missions.c.id == mission_id)
        .values(settlement="settled", settled_at=now)
    )
    await outbox.emit(
        conn,
        outbox.MISSION_SETTLED,
        {"mission_id": mission_id, "streamer_id": m.streamer_id, "status": m.status},
        now,
    )
    return True


async def _payout(conn: AsyncConnection, m: Any, now: datetime) -> None:
    total = int(
        await conn.scalar(
            select(func.coalesce(func.sum(pledges.c.amount), 0)).where(
                pledges.c.mission_id == m.id
            )
        )
        or 0
    )
    fee = L.fee_for(total, m.fee_bps)
    payout = total - fee
    if payout > 0:
        await journal.post(conn, kind=L.TransferKind.payout, currency=L.KRW,
                          from_account=L.escrow(m.id), to_account=L.user_cash(m.streamer_id),
                          amount=payout, now=now, mission_id=m.id, transfer_id=f"payout:{m.id}")
        await journal.credit_wallet(conn, m.streamer_id, L.KRW, payout)
    if fee > 0:
        await journal.post(conn, kind=L.TransferKind.fee, currency=L.KRW,
                          from_account=L.escrow(m.id), to_account=L.PLATFORM_FEE_ACCOUNT,
                          amount=fee, now=now, mission_id=m.id, transfer_id=f"fee:{m.id}")


async def _credit_wallets_from(conn: AsyncConnection, per_user: Any, column: str) -> None:
    col = wallets.c[column]
    await conn.execute(
        update(wallets)
        .values({col: col + per_user.c.amount})
        .where(wallets.c.user_id == per_user.c.user_id)
    )


async def _refund_pledges(conn: AsyncConnection, mission_id: int, now: datetime) -> None:
    """One refund transfer per pledge, so every backer's receipt shows each one."""
    rows = select(
        _text("refund:") + cast(pledges.c.id, String),
        _text(L.TransferKind.refund.value),
        _text(L.KRW),
        _text(L.escrow(mission_id)),
        _account("user:", pledges.c.user_id, ":cash"),
        pledges.c.amount,
        pledges.c.mission_id,
        literal(now, transfers.c.created_at.type),
    ).where(pledges.c.mission_id == mission_id)
    await conn.execute(insert(transfers).from_select(_TRANSFER_COLS, rows))
    per_user = (
        select(pledges.c.user_id, func.sum(pledges.c.amount).label("amount"))
        .where(pledges.c.mission_id == mission_id)
        .group_by(pledges.c.user_id)
        .subquery()
    )
    await _credit_wallets_from(conn, per_user, "cash_balance")


async def _award_pledge_points(conn: AsyncConnection, mission_id: int, now: datetime) -> None:
    # sum() of bigint is numeric on PostgreSQL: cast back before integer division.
    earned = (cast(func.sum(pledges.c.amount), BigInteger) // L.KRW_PER_POINT).label("amount")
    per_user = (
        select(pledges.c.user_id, earned)
        .where(pledges.c.mission_id == mission_id)
        .group_by(pledges.c.user_id)
        .having(func.sum(pledges.c.amount) >= L.KRW_PER_POINT)
        .subquery()
    )
    rows = select(
        _text(f"pledge_points:{mission_id}:") + cast(per_user.c.user_id, String),
        _text(L.TransferKind.pledge_points.value),
        _text(L.PTS),
        _text(L.PLATFORM_POINTS_ACCOUNT),
        _account("user:", per_user.c.user_id, ":points"),
        per_user.c.amount,
        literal(mission_id),
        literal(now, transfers.c.created_at.type),
    )
    await conn.execute(insert(transfers).from_select(_TRANSFER_COLS, rows))
    await _credit_wallets_from(conn, per_user, "points_balance")


async def _settle_bets(
    conn: AsyncConnection, mission_id: int, winning: str | None, now: datetime
) -> None:
    pools = dict(
        (
            await conn.execute(
                select(bets.c.side, func.sum(bets.c.points))
                .where(bets.c.mission_id == mission_id)
                .group_by(bets.c.side)
            )
        ).all()
    )
    total = int(sum(pools.values()))
    if total == 0:
        return
    winning_pool = int(pools.get(winning, 0)) if winning else 0
    amount: Any
    where: Any
    if winning_pool == 0:
        kind, amount = L.TransferKind.bet_refund, bets.c.points
        where = bets.c.mission_id == mission_id
    else:
        # floor(stake * total / winning_pool): integer division on both databases.
        kind = L.TransferKind.bet_payout
        amount = (bets.c.points * literal(total, BigInteger)) // literal(winning_pool, BigInteger)
        where = and_(bets.c.mission_id == mission_id, bets.c.side == winning)
    per_bet = select(bets.c.id, bets.c.user_id, cast(amount, BigInteger).label("amount")).where(
        where
    ).subquery()
    rows = select(
        _text(f"{kind.value}:") + cast(per_bet.c.id, String),
        _text(kind.value),
        _text(L.PTS),
        _text(L.stake_pool(mission_id)),
        _account("user:", per_bet.c.user_id, ":points"),
        per_bet.c.amount,
        literal(mission_id),
        literal(now, transfers.c.created_at.type),
    ).where(per_bet.c.amount > 0)
    await conn.execute(insert(transfers).from_select(_TRANSFER_COLS, rows))
    await _credit_wallets_from(conn, per_bet, "points_balance")
    paid = int(
        await conn.scalar(
            select(func.coalesce(func.sum(transfers.c.amount), 0)).where(
                transfers.c.mission_id == mission_id, transfers.c.kind == kind.value
            )
        )
        or 0
    )
    if total - paid > 0:
        await journal.post(conn, kind=L.TransferKind.bet_dust, currency=L.PTS,
                          from_account=L.stake_pool(mission_id),
                          to_account=L.PLATFORM_POINTS_ACCOUNT, amount=total - paid, now=now,
                          mission_id=mission_id, transfer_id=f"bet_dust:{mission_id}")


_MESSAGE_ID = "<mission-{mission}.user-{user}@missionlink>"


def message_id_for(mission_id: int, user_id: int) -> str:
    """Stable per (mission, recipient): a re-sent copy is recognisably the same email."""
    return _MESSAGE_ID.format(mission=mission_id, user=user_id)


def _message_id_sql(mission_id: int, user_col: Any) -> Any:
    """``message_id_for`` as a SQL expression over a column of user ids."""
    head, tail = _MESSAGE_ID.format(mission=mission_id, user="\0").split("\0")
    return _text(head) + cast(user_col, String) + _text(tail)


async def _queue_emails(conn: AsyncConnection, m: Any, now: datetime) -> None:
    backers = (
        select(pledges.c.user_id).where(pledges.c.mission_id == m.id).distinct().subquery()
    )
    rows = select(
        literal(m.id),
        backers.c.user_id,
        _text("backer"),
        _message_id_sql(m.id, backers.c.user_id),
        _text("queued"),
        literal(now, email_jobs.c.created_at.type),
    )
    cols = ["mission_id", "user_id", "role", "message_id", "status", "created_at"]
    await conn.execute(insert(email_jobs).from_select(cols, rows))
    await conn.execute(
        insert(email_jobs).values(
            mission_id=m.id, user_id=m.streamer_id, role="streamer",
            message_id=message_id_for(m.id, m.streamer_id), status="queued", created_at=now,
        )
    )
