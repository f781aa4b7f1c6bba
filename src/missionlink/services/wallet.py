"""Wallet use cases: balances, top-ups (sandbox, webhook-confirmed, or paid with a real
provider and confirmed by fetching the payment from it), journal lines."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal
from missionlink.adapters.db.core_tables import topups, transfers, wallets
from missionlink.adapters.payments.providers import (
    PaymentIntent,
    PaymentProvider,
    ProviderPayment,
    WebhookEvent,
)
from missionlink.domain import ledger as L
from missionlink.domain.cursors import decode_opaque, encode_opaque
from missionlink.domain.errors import (
    DailyTopupLimit,
    InvalidInput,
    NotFound,
    PaymentMismatch,
    check_range,
)
from missionlink.domain.timestamps import iso
from missionlink.services import chargebacks
from missionlink.services.ports import Transactions

MIN_TOPUP = 1000


async def balances(conn: AsyncConnection, user_id: int) -> dict[str, int]:
    row = (await conn.execute(select(wallets).where(wallets.c.user_id == user_id))).first()
    if row is None:
        raise NotFound("you have no wallet yet")
    return {"cash_balance": row.cash_balance, "points_balance": row.points_balance,
            "debt": row.debt}


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
    # A chargeback's debt is paid first from a new top-up, so the wallet can pledge again.
    if await chargebacks.debt_of(conn, topup.user_id):
        await chargebacks.repay_debt(conn, user_id=topup.user_id, now=now,
                                     transfer_id=f"{L.TransferKind.debt_repayment}:topup:"
                                                 f"{topup.id}")


def topup_out(row: Any) -> dict[str, Any]:
    return {"id": row.id, "amount": row.amount, "status": row.status,
            "provider": row.provider, "created_at": iso(row.created_at),
            "completed_at": iso(row.completed_at)}


def topup_detail(row: Any) -> dict[str, Any]:
    """A top-up as its owner sees it: state, outcome, and where a deposit goes."""
    return {**topup_out(row), "currency": row.currency,
            "provider_payment_id": row.provider_payment_id,
            "failure_reason": row.failure_reason,
            "reported_amount": row.reported_amount,
            "reported_currency": row.reported_currency,
            "virtual_account": row.virtual_account,
            "deposit_due_at": iso(row.deposit_due_at)}


#: Korea Standard Time: the daily top-up limit counts calendar days there.
KST = timezone(timedelta(hours=9), "KST")
#: A payment opened (pending) counts against the daily limit for this long: the time a
#: widget's session lasts. An abandoned one stops holding the limit after it.
PENDING_HOLD = timedelta(hours=1)
#: States that count as money in for the daily limit (pending ones only while recent).
_COUNTED = ("completed", "awaiting_deposit")


def kst_day(now: datetime) -> tuple[datetime, datetime]:
    """The KST calendar day holding ``now``, as [start, end) instants."""
    local = now.astimezone(KST)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


async def check_daily_limit(
    conn: AsyncConnection, *, user_id: int, amount: int, limit: int, now: datetime
) -> None:
    """Refuse a top-up that would take a user's KST day past ``limit`` KRW (0: no limit).

    The user's wallet row is locked first, so two top-ups opened at once are counted one
    after the other.
    """
    if limit <= 0:
        return
    await conn.execute(
        select(wallets.c.user_id).where(wallets.c.user_id == user_id).with_for_update()
    )
    start, end = kst_day(now)
    used = int(await conn.scalar(
        select(func.coalesce(func.sum(topups.c.amount), 0)).where(
            topups.c.user_id == user_id,
            topups.c.provider != "sandbox",
            topups.c.created_at >= start,
            topups.c.created_at < end,
            or_(topups.c.status.in_(_COUNTED),
                and_(topups.c.status == "pending", topups.c.created_at > now - PENDING_HOLD)),
        )
    ) or 0)
    if used + amount > limit:
        wait = max(math.ceil((end - now).total_seconds()), 1)
        raise DailyTopupLimit(
            f"top-ups are limited to {limit} KRW per day (KST); {used} KRW used today, "
            f"so {max(limit - used, 0)} KRW is left until the day ends in {wait} s",
            retry_after=wait,
        )


def new_reference() -> str:
    """Our own id of a payment, given to the provider (PortOne's paymentId)."""
    return f"ml_{uuid.uuid4().hex}"


async def open_topup(
    conn: AsyncConnection, *, user_id: int, amount: int, provider: PaymentProvider,
    daily_limit: int, now: datetime,
) -> dict[str, Any]:
    """Open a top-up: check the daily limit, ask the provider for a payment, record it."""
    if provider.name != "sandbox":
        await check_daily_limit(conn, user_id=user_id, amount=amount, limit=daily_limit,
                                now=now)
    intent = await provider.start(user_id=user_id, amount=amount, reference=new_reference())
    return await record_topup(conn, user_id=user_id, amount=amount, provider=provider.name,
                              intent=intent, now=now)


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
                    currency=L.KRW,
                    created_at=now, completed_at=now if intent.completed else None)
            .returning(*topups.c)
        )
    ).one()
    if intent.completed:
        await _complete(conn, row, provider, now)
    out = topup_out(row)
    out["provider_payment_id"] = intent.provider_payment_id
    out["currency"] = row.currency
    out["checkout"] = intent.checkout
    return out


async def topup_of(conn: AsyncConnection, user_id: int, topup_id: int) -> Any:
    row = (await conn.execute(
        select(topups).where(topups.c.id == topup_id, topups.c.user_id == user_id)
    )).first()
    if row is None:
        raise NotFound("no such top-up")
    return row


async def list_topups(conn: AsyncConnection, user_id: int, *, limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(topups).where(topups.c.user_id == user_id)
        .order_by(topups.c.created_at.desc(), topups.c.id.desc()).limit(limit)
    )
    return [topup_detail(r) for r in rows]


#: Which states a provider's report may move a top-up out of, per reported state. A paid
#: report may complete a failed one (the payer retried the same payment and it went
#: through); cancelled, rejected and completed top-ups never change again here.
_MAY_LEAVE: dict[str, tuple[str, ...]] = {
    "paid": ("pending", "awaiting_deposit", "failed"),
    "awaiting_deposit": ("pending",),
    "failed": ("pending", "awaiting_deposit"),
    "cancelled": ("pending", "awaiting_deposit", "failed"),
}


async def apply_payment(
    conn: AsyncConnection, *, provider: str, payment: ProviderPayment, now: datetime
) -> dict[str, Any]:
    """Bring a top-up in line with what the provider's API reports, once.

    A paid payment is credited only if its amount and currency are what the server asked
    for; otherwise the top-up is ``rejected`` with the reported amount kept, and nothing
    is credited. Replays (browser and webhook both, duplicate webhooks) change nothing:
    each move is one conditional UPDATE out of the states it may leave, and the credit's
    journal id is the top-up's.
    """
    where = (topups.c.provider == provider,
             topups.c.provider_payment_id == payment.provider_payment_id)
    row = (await conn.execute(select(topups).where(*where))).first()
    if row is None:
        raise NotFound("no top-up with that payment id")
    leave = _MAY_LEAVE.get(payment.status, ())
    if row.status not in leave:
        return {**topup_detail(row), "applied": False}
    values: dict[str, Any]
    credit = False
    if payment.status == "paid":
        if payment.amount == row.amount and payment.currency == row.currency:
            values = {"status": "completed", "completed_at": now, "failure_reason": None}
            credit = True
        else:
            values = {"status": "rejected", "completed_at": now,
                      "reported_amount": payment.amount,
                      "reported_currency": (payment.currency or "")[:3] or None,
                      "failure_reason": (
                          f"the provider reports {payment.amount} {payment.currency} paid, "
                          f"but this top-up asked for {row.amount} {row.currency}")}
    elif payment.status == "awaiting_deposit":
        values = {"status": "awaiting_deposit",
                  "virtual_account": (payment.virtual_account or "")[:200] or None,
                  "deposit_due_at": payment.deposit_due_at}
    else:
        values = {"status": payment.status, "completed_at": now,
                  "failure_reason": (payment.reason or payment.status)[:300]}
    moved = (await conn.execute(
        update(topups).where(*where, topups.c.status.in_(leave)).values(**values)
        .returning(*topups.c)
    )).first()
    if moved is None:  # another confirmation got there first
        row = (await conn.execute(select(topups).where(*where))).one()
        return {**topup_detail(row), "applied": False}
    if credit:
        await _complete(conn, moved, provider, now)
    return {**topup_detail(moved), "applied": True}


async def sync_topups(
    db: Transactions, provider: PaymentProvider, *, now: datetime, older_than: timedelta,
    limit: int,
) -> dict[str, int]:
    """Ask the provider about top-ups still open (pending, awaiting a deposit) that were
    opened more than ``older_than`` ago, and apply what it says: the safety net for a
    browser that never came back *and* a webhook that never arrived. Each is applied in a
    transaction of its own, as a confirmation would be; counts per resulting state."""
    async with db.read() as conn:
        ids = [r[0] for r in await conn.execute(
            select(topups.c.provider_payment_id).where(
                topups.c.provider == provider.name,
                topups.c.status.in_(("pending", "awaiting_deposit")),
                topups.c.created_at < now - older_than,
            ).order_by(topups.c.created_at).limit(limit)
        )]
    counts: dict[str, int] = {}
    for pid in ids:
        payment = await provider.fetch(pid)

        async def work(conn: AsyncConnection, payment: ProviderPayment = payment
                       ) -> dict[str, Any]:
            return await apply_payment(conn, provider=provider.name, payment=payment, now=now)

        result = await db.transaction(work)
        key = result["status"] if result["applied"] else "unchanged"
        counts[key] = counts.get(key, 0) + 1
    return counts


def raise_if_rejected(result: dict[str, Any]) -> None:
    """A rejected top-up's confirmation is a conflict the payer must hear about."""
    if result["status"] == "rejected":
        raise PaymentMismatch(str(result["failure_reason"]))


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


def journal_line(row: Any, accounts: set[str]) -> dict[str, Any]:
    """One transfer as a line of the wallet owning ``accounts``: signed, from its side."""
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
    return [journal_line(r, accounts) for r in page], nxt


CSV_FIELDS = ["id", "created_at", "kind", "currency", "amount", "account", "counterparty",
              "mission_id"]


async def stream_lines(db: Transactions, user_id: int) -> AsyncIterator[dict[str, Any]]:
    """Every journal line of a user, newest first, streamed for the CSV receipt export."""
    stmt, accounts = _lines_stmt(user_id)
    async with db.connect_readonly() as conn:
        result = await conn.stream(stmt.execution_options(yield_per=500))
        async for row in result:
            yield journal_line(row, accounts)
