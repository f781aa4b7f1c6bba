"""A streamer's yearly earnings statement: per calendar month in Korea (KST), what their
missions earned and what they withdrew (docs/payments.md, "Yearly statement")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import missions, transfers
from missionlink.adapters.db.payout_tables import withdrawals
from missionlink.domain import ledger as L
from missionlink.domain import payouts as P
from missionlink.services.wallet import KST

#: The statement's columns, in order (the CSV's header).
FIELDS = ["month", "gross", "fee", "earnings", "withdrawn", "withholding", "net"]


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=KST), datetime(year + 1, 1, 1, tzinfo=KST)


def _month(at: datetime) -> int:
    return at.astimezone(KST).month


async def statement(conn: AsyncConnection, *, user_id: int, year: int) -> dict[str, Any]:
    """Twelve months and the year's total. ``gross`` is what the streamer's succeeded
    missions collected, ``fee`` the platform's share of it and ``earnings`` the rest
    (credited to the wallet); ``withdrawn`` the withdrawals asked for that month (not
    failed), ``withholding`` the tax withheld from them and ``net`` what went to the bank
    account."""
    start, end = _year_bounds(year)
    months: dict[int, dict[str, int]] = {m: dict.fromkeys(FIELDS[1:], 0) for m in range(1, 13)}
    in_year = and_(transfers.c.created_at >= start, transfers.c.created_at < end)
    earned = await conn.execute(
        select(transfers.c.kind, transfers.c.amount, transfers.c.created_at)
        .select_from(transfers.join(missions, missions.c.id == transfers.c.mission_id))
        .where(missions.c.streamer_id == user_id, in_year,
               transfers.c.kind.in_((L.TransferKind.payout.value, L.TransferKind.fee.value))))
    for kind, amount, at in earned:
        row = months[_month(at)]
        row["gross"] += amount
        if kind == L.TransferKind.fee.value:
            row["fee"] += amount
        else:
            row["earnings"] += amount
    out = await conn.execute(
        select(withdrawals.c.gross, withdrawals.c.income_tax, withdrawals.c.local_tax,
               withdrawals.c.net, withdrawals.c.created_at)
        .where(withdrawals.c.user_id == user_id, withdrawals.c.state.in_(P.COMMITTED),
               withdrawals.c.created_at >= start, withdrawals.c.created_at < end))
    for gross, income_tax, local_tax, net, at in out:
        row = months[_month(at)]
        row["withdrawn"] += gross
        row["withholding"] += income_tax + local_tax
        row["net"] += net
    total = {k: sum(v[k] for v in months.values()) for k in FIELDS[1:]}
    rows = [{"month": f"{year}-{m:02d}", **v} for m, v in months.items()]
    return {"year": year, "months": rows, "total": total}
