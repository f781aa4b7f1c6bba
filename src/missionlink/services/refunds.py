"""Refunds of top-ups to the original payment method (docs/payments.md, "Refunds").

The ledger moves first: asking holds the cash (``user:<id>:cash`` →
``provider:<name>:refunds_pending``) with the refund ``pending``, in one transaction.
Only then is the provider asked, idempotently on the refund's reference. What it answers
settles the refund in a second transaction: ``succeeded`` pays the held cash out to the
provider's clearing account the top-up came from, ``failed`` reverses it to the cash. A
provider that does not answer leaves it pending: its webhook or ``missionlink payments
sync`` settles it later.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal
from missionlink.adapters.db.core_tables import topup_refunds, topups, wallets
from missionlink.adapters.payments.providers import (
    PaymentProvider,
    ProviderRefund,
    RefundRequest,
)
from missionlink.domain import ledger as L
from missionlink.domain import refunds as rules
from missionlink.domain.errors import IdempotencyMismatch, NotFound, ProviderUnavailable
from missionlink.domain.timestamps import iso
from missionlink.services import chargebacks
from missionlink.services.ports import Transactions

_log = structlog.get_logger(__name__)
#: What the provider's record of the cancellation says when the user gave no reason.
DEFAULT_REASON = "충전 환불 요청 (refund requested)"
_HELD = ("pending", "succeeded")
_PENDING_COUNT = func.sum(case((topup_refunds.c.state == "pending", 1), else_=0))


def reference(provider_payment_id: str, refund_id: int) -> str:
    """Our id of a refund at the provider, its idempotency key: unique beyond this
    database, as the payment's id is."""
    return f"{provider_payment_id}:refund:{refund_id}"


def hold_id(refund_id: int) -> str:
    return f"topup_refund:{refund_id}"


def paid_id(refund_id: int) -> str:
    return f"topup_refund:{refund_id}:paid"


def reversal_id(refund_id: int) -> str:
    return f"topup_refund:{refund_id}:reversed"


def refund_out(row: Any) -> dict[str, Any]:
    return {"id": row.id, "topup_id": row.topup_id, "amount": row.amount, "currency": L.KRW,
            "state": row.state, "provider_refund_id": row.provider_refund_id,
            "reason": row.reason, "failure_reason": row.failure_reason,
            "created_at": iso(row.created_at), "settled_at": iso(row.settled_at)}


async def _facts(conn: AsyncConnection, topup: Any, cash: int) -> rules.TopupForRefund:
    held = (await conn.execute(
        select(func.coalesce(func.sum(topup_refunds.c.amount), 0),
               _PENDING_COUNT)
        .where(topup_refunds.c.topup_id == topup.id, topup_refunds.c.state.in_(_HELD))
    )).one()
    return rules.TopupForRefund(
        status=topup.status, provider=topup.provider, amount=topup.amount,
        completed_at=topup.completed_at, refunded=int(held[0]),
        refund_pending=int(held[1] or 0) > 0, cash_balance=cash,
        charged_back=(await chargebacks.standing(conn, [topup.id])).get(topup.id, 0))


async def request_refund(
    conn: AsyncConnection, *, user_id: int, topup_id: int, amount: int | None,
    reason: str | None, key: str | None, provider: str, now: datetime, window: timedelta,
) -> dict[str, Any]:
    """Hold the cash of a new refund (pending); the provider is asked after this commits.

    The wallet and the top-up are locked first (in that order), so two refunds asked at
    once are counted one after the other; a key already used for a refund of this top-up
    answers that refund.
    """
    key = key or f"auto:{uuid.uuid4().hex}"
    earlier = (await conn.execute(select(topup_refunds).where(
        topup_refunds.c.user_id == user_id, topup_refunds.c.idempotency_key == key))).first()
    if earlier is not None:
        if earlier.topup_id != topup_id:
            raise IdempotencyMismatch("this Idempotency-Key was used for another refund")
        return refund_out(earlier)
    cash = await conn.scalar(select(wallets.c.cash_balance)
                             .where(wallets.c.user_id == user_id).with_for_update())
    topup = (await conn.execute(
        select(topups).where(topups.c.id == topup_id, topups.c.user_id == user_id)
        .with_for_update())).first()
    if topup is None or cash is None:
        raise NotFound("no such top-up")
    facts = await _facts(conn, topup, int(cash))
    amount = rules.refund_amount(facts, amount, provider=provider, now=now, window=window)
    row = (await conn.execute(
        insert(topup_refunds).values(
            topup_id=topup.id, user_id=user_id, amount=amount, state="pending",
            idempotency_key=key, reason=reason, created_at=now, updated_at=now)
        .returning(*topup_refunds.c))).one()
    await journal.post(conn, kind=L.TransferKind.topup_refund, currency=L.KRW,
                       from_account=L.user_cash(user_id),
                       to_account=L.refunds_pending(topup.provider),
                       amount=amount, now=now, transfer_id=hold_id(row.id))
    await journal.debit_wallet(conn, user_id, L.KRW, amount)
    return refund_out(row)


async def apply_outcome(
    conn: AsyncConnection, *, refund_id: int, outcome: ProviderRefund, now: datetime
) -> dict[str, Any]:
    """Settle a pending refund as the provider reports it, once (a conditional UPDATE out
    of ``pending``; the journal ids are the refund's)."""
    row = (await conn.execute(select(topup_refunds, topups.c.provider).join(
        topups, topups.c.id == topup_refunds.c.topup_id)
        .where(topup_refunds.c.id == refund_id))).one()
    if row.state != "pending":
        return refund_out(row)
    values: dict[str, Any] = {"updated_at": now}
    if outcome.provider_refund_id and row.provider_refund_id is None:
        values["provider_refund_id"] = outcome.provider_refund_id[:128]
    if outcome.status != "pending":
        values.update(state=outcome.status, settled_at=now)
    if outcome.status == "failed":
        values["failure_reason"] = (outcome.reason or "the provider refused the refund")[:300]
    moved = (await conn.execute(
        update(topup_refunds)
        .where(topup_refunds.c.id == refund_id, topup_refunds.c.state == "pending")
        .values(**values).returning(*topup_refunds.c))).first()
    if moved is None:  # settled meanwhile by the webhook, the sweep or a retry
        return refund_out((await conn.execute(
            select(topup_refunds).where(topup_refunds.c.id == refund_id))).one())
    pending = L.refunds_pending(row.provider)
    if outcome.status == "succeeded":
        await journal.post(conn, kind=L.TransferKind.topup_refund_paid, currency=L.KRW,
                           from_account=pending, to_account=L.provider_clearing(row.provider),
                           amount=row.amount, now=now, transfer_id=paid_id(row.id))
    elif outcome.status == "failed":
        await journal.post(conn, kind=L.TransferKind.topup_refund_reversal, currency=L.KRW,
                           from_account=pending, to_account=L.user_cash(row.user_id),
                           amount=row.amount, now=now, transfer_id=reversal_id(row.id))
        await journal.credit_wallet(conn, row.user_id, L.KRW, row.amount)
    return refund_out(moved)


async def ask_provider(
    db: Transactions, provider: PaymentProvider, *, refund_id: int, now: datetime
) -> dict[str, Any]:
    """Ask the provider for a pending refund (or look it up, once asked) and settle it as
    it answers; a provider that does not answer leaves it pending. The refund, as it is."""
    async with db.read() as conn:
        row = (await conn.execute(
            select(topup_refunds, topups.c.provider_payment_id,
                   topups.c.amount.label("topup_amount"))
            .join(topups, topups.c.id == topup_refunds.c.topup_id)
            .where(topup_refunds.c.id == refund_id))).one()
        if row.state != "pending":
            return refund_out(row)
        paid_back = int(await conn.scalar(
            select(func.coalesce(func.sum(topup_refunds.c.amount), 0)).where(
                topup_refunds.c.topup_id == row.topup_id,
                topup_refunds.c.state == "succeeded")) or 0)
    request = RefundRequest(
        provider_payment_id=row.provider_payment_id, amount=row.amount,
        reference=reference(row.provider_payment_id, row.id),
        reason=(row.reason or DEFAULT_REASON)[:150],
        cancellable=row.topup_amount - paid_back, provider_refund_id=row.provider_refund_id)
    try:
        outcome = await provider.refund(request)
    except ProviderUnavailable:
        _log.warning("refunds.provider_unavailable", refund_id=refund_id)
        async with db.read() as conn:
            return refund_out((await conn.execute(
                select(topup_refunds).where(topup_refunds.c.id == refund_id))).one())

    async def settle(conn: AsyncConnection) -> dict[str, Any]:
        return await apply_outcome(conn, refund_id=refund_id, outcome=outcome, now=now)

    return await db.transaction(settle)


async def _pending_ids(db: Transactions, *where: Any, limit: int = 100) -> list[int]:
    async with db.read() as conn:
        return [r[0] for r in await conn.execute(
            select(topup_refunds.c.id)
            .join(topups, topups.c.id == topup_refunds.c.topup_id)
            .where(topup_refunds.c.state == "pending", *where)
            .order_by(topup_refunds.c.updated_at).limit(limit))]


async def settle_for_payment(
    db: Transactions, provider: PaymentProvider, *, provider_payment_id: str, now: datetime
) -> int:
    """A provider's webhook says a payment's refunds moved: settle its pending refunds."""
    ids = await _pending_ids(db, topups.c.provider == provider.name,
                             topups.c.provider_payment_id == provider_payment_id)
    settled = 0
    for refund_id in ids:
        out = await ask_provider(db, provider, refund_id=refund_id, now=now)
        settled += out["state"] != "pending"
    return settled


async def sync_refunds(
    db: Transactions, provider: PaymentProvider, *, now: datetime, older_than: timedelta,
    limit: int,
) -> dict[str, int]:
    """Ask the provider again about refunds pending longer than ``older_than`` (a lost
    answer, a lost webhook); counts per resulting state (``pending`` if still so)."""
    ids = await _pending_ids(db, topups.c.provider == provider.name,
                             topup_refunds.c.updated_at < now - older_than, limit=limit)
    counts: dict[str, int] = {}
    for refund_id in ids:
        state = (await ask_provider(db, provider, refund_id=refund_id, now=now))["state"]
        counts[state] = counts.get(state, 0) + 1
    return counts


async def list_refunds(
    conn: AsyncConnection, user_id: int, *, limit: int, topup_id: int | None = None
) -> list[dict[str, Any]]:
    stmt = select(topup_refunds).where(topup_refunds.c.user_id == user_id)
    if topup_id is not None:
        stmt = stmt.where(topup_refunds.c.topup_id == topup_id)
    rows = await conn.execute(stmt.order_by(topup_refunds.c.created_at.desc(),
                                            topup_refunds.c.id.desc()).limit(limit))
    return [refund_out(r) for r in rows]


async def refundable_of(
    conn: AsyncConnection, user_id: int, topup_ids: Sequence[int], *, provider: str,
    now: datetime, window: timedelta,
) -> dict[int, int]:
    """KRW each of these top-ups of the user may be refunded now (0 when it may not)."""
    if not topup_ids:
        return {}
    wallet = (await conn.execute(select(wallets.c.cash_balance, wallets.c.debt)
                                 .where(wallets.c.user_id == user_id))).first()
    # A wallet in debt refunds nothing until the debt is repaid (pays no one before us).
    cash = int(wallet.cash_balance) if wallet is not None and not wallet.debt else 0
    charged = await chargebacks.standing(conn, topup_ids)
    held = {r.topup_id: r for r in await conn.execute(
        select(topup_refunds.c.topup_id,
               func.sum(topup_refunds.c.amount).label("amount"),
               _PENDING_COUNT.label("pending"))
        .where(topup_refunds.c.topup_id.in_(topup_ids), topup_refunds.c.state.in_(_HELD))
        .group_by(topup_refunds.c.topup_id))}
    out = {}
    for t in await conn.execute(select(topups).where(
            and_(topups.c.id.in_(topup_ids), topups.c.user_id == user_id))):
        h = held.get(t.id)
        facts = rules.TopupForRefund(
            status=t.status, provider=t.provider, amount=t.amount, completed_at=t.completed_at,
            refunded=int(h.amount) if h else 0, refund_pending=bool(h and h.pending),
            cash_balance=cash, charged_back=charged.get(t.id, 0))
        out[t.id] = rules.refundable_now(facts, provider=provider, now=now, window=window)
    return out
