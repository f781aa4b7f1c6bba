"""Wallet use cases: balances, top-ups (sandbox or webhook-confirmed), journal lines."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal
from missionlink.adapters.db.core_tables import topups, transfers, wallets
from missionlink.adapters.payments.providers import PaymentIntent, WebhookEvent
from missionlink.domain import ledger as L
from missionlink.domain.cursors import decode_opaque, encode_opaque
from missionlink.domain.errors import InvalidInput, NotFound, check_range
from missionlink.domain.timestamps import iso
from missionlink.services.ports import Transactions

MIN_TOPUP = 1000


async def balances(conn: AsyncConnection, user_id: int) -> dict[str, int]:
    row = (await conn.execute(select(wallets).where(wallets.c.user_id == user_id))).first()
    if row is None:
        raise NotFound("you have no wallet yet")
    return {"cash_balance": row.cash_balance, "points_balance": row.points_balance}


def check_topup_amount(amount: int, *, max_topup: int) -> None:
    check_range("amount", amount, MIN_TOPUP, max_topup, unit="KRW")


async def _complete(conn: AsyncConnection, topup: Any, provider: str, now: datetime) -> None:
    await journal.post(
        conn,
        kind=L.TransferKind.topup,
        currency=L.KRW,
        from_account=L.provider_clearing(provider),
        to_account=L.user_cash(topup.user_id),
        amount=topup.amount,
        now=now,
        transfer_id=f"topup:{topup.id}",
    )
    await journal.credit_wallet(conn, topup.user_id, L.KRW, topup.amount)


def topup_out(row: Any) -> dict[str, Any]:
    return {"id": row.id, "amount": row.amount, "status": row.status,
            "provider": row.provider, "created_at": iso(row.created_at),
            "completed_at": iso(row.completed_at)}


async def record_topup(
    conn: AsyncConnection, *, user_id: int, amount: int, provider: str, intent: PaymentIntent,
    now: datetime,
) -> dict[str, Any]:
    row = (
        await conn.execute(
            insert(topups)
            .values(user_id=user_id, amount=amount, provider=provider,
                    provider_payment_id=intent.provider_payment_id,
                    status="completed" if intent.completed else "pending",
                    created_at=now, completed_at=now if intent.completed else None)
            .returning(*topups.c)
        )
    ).one()
    if intent.completed:
        await _complete(conn, row, provider, now)
    out = topup_out(row)
    out["provider_payment_id"] = intent.provider_payment_id
    return out


async def confirm_webhook(
    conn: AsyncConnection, *, provider: str, event: WebhookEvent, now: datetime
) -> dict[str, Any]:
    """Apply a provider's confirmation once; replays of the same payment id change nothing."""
    pending = (
        await conn.execute(
            update(topups)
            .where(
                topups.c.provider == provider,
                topups.c.provider_payment_id == event.provider_payment_id,
                topups.c.status == "pending",
            )
            .values(status=event.status, completed_at=now)
            .returning(*topups.c)
        )
    ).first()
    if pending is not None:
        if event.status == "completed":
            await _complete(conn, pending, provider, now)
        return {"id": pending.id, "status": event.status, "applied": True}
    known = (
        await conn.execute(
            select(topups).where(
                topups.c.provider == provider,
                topups.c.provider_payment_id == event.provider_payment_id,
            )
        )
    ).first()
    if known is None:
        raise NotFound("no top-up with that payment id")
    return {"id": known.id, "status": known.status, "applied": False}


#: Transfer ids are short printable ASCII (``pledge:42``); nothing else is looked up.
_TRANSFER_ID = re.compile(r"[!-~]{1,80}")


def encode_cursor(created_at: datetime, transfer_id: str) -> str:
    return encode_opaque(f"{created_at.isoformat()}|{transfer_id}")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Only what ``encode_cursor`` writes: an aware UTC instant in its own ISO form and an id.

    A naive or shifted date, or any other spelling, is refused (422) rather than compared
    against stored instants, where it would fail inside the database driver.
    """
    stamp, sep, tid = decode_opaque(cursor).partition("|")
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise InvalidInput.malformed_cursor() from exc
    if (not sep or at.utcoffset() != timedelta(0) or at.isoformat() != stamp
            or not _TRANSFER_ID.fullmatch(tid)):
        raise InvalidInput.malformed_cursor()
    return at, tid


def _line(row: Any, accounts: set[str]) -> dict[str, Any]:
    incoming = row.to_account in accounts
    return {
        "id": row.id,
        "created_at": iso(row.created_at),
        "kind": row.kind,
        "currency": row.currency,
        "amount": row.amount if incoming else -row.amount,
        "account": row.to_account if incoming else row.from_account,
        "counterparty": row.from_account if incoming else row.to_account,
        "mission_id": row.mission_id,
    }


def _lines_stmt(user_id: int) -> tuple[Any, set[str]]:
    accounts = {L.user_cash(user_id), L.user_points(user_id)}
    stmt = select(transfers).where(
        or_(transfers.c.from_account.in_(accounts), transfers.c.to_account.in_(accounts))
    ).order_by(transfers.c.created_at.desc(), transfers.c.id.desc())
    return stmt, accounts


async def journal_lines(
    conn: AsyncConnection, user_id: int, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    stmt, accounts = _lines_stmt(user_id)
    if cursor:
        at, tid = decode_cursor(cursor)
        stmt = stmt.where(
            or_(transfers.c.created_at < at,
                and_(transfers.c.created_at == at, transfers.c.id < tid))
        )
    rows = list(await conn.execute(stmt.limit(limit + 1)))
    page = rows[:limit]
    nxt = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return [_line(r, accounts) for r in page], nxt


CSV_FIELDS = ["id", "created_at", "kind", "currency", "amount", "account", "counterparty",
              "mission_id"]


async def stream_lines(db: Transactions, user_id: int) -> AsyncIterator[dict[str, Any]]:
    """Every journal line of a user, newest first, streamed for the CSV receipt export."""
    stmt, accounts = _lines_stmt(user_id)
    async with db.connect_readonly() as conn:
        result = await conn.stream(stmt.execution_options(yield_per=500))
        async for row in result:
            yield _line(row, accounts)
