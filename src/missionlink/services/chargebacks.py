"""Chargebacks: a provider takes a top-up's money back (a dispute, or a cancellation we did
not make), and the wallet gives it back from its cash as far as it goes; the rest is owed.

What is owed is posted from the user's receivable account (``user:{id}:receivable``) and
kept as ``wallets.debt``, never as negative cash. While it is above zero every pledge and
bet is refused (``WalletInDebt``, in ``journal.debit_wallet`` and in the PostgreSQL pledge
function). It is paid from cash by ``repay_debt``: on request, and at once when a top-up
is credited. A dispute won gives the money back, paying down the debt first.

Journal transfers, one id each (so a replay cannot post twice):

- ``chargeback:{id}:cash`` cash → provider clearing, ``chargeback:{id}:debt`` receivable →
  provider clearing (kind ``chargeback``): together the chargeback's amount;
- ``chargeback:{id}:won:debt`` clearing → receivable, ``chargeback:{id}:won:cash``
  clearing → cash (kind ``chargeback_won``): together the amount again, once it is won;
- ``debt_repayment:…`` cash → receivable (kind ``debt_repayment``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal
from missionlink.adapters.db.core_tables import chargebacks, topup_refunds, topups, wallets
from missionlink.adapters.payments.providers import ProviderDispute
from missionlink.domain import ledger as L
from missionlink.domain.errors import InsufficientFunds, NotFound, PaymentMismatch
from missionlink.domain.timestamps import iso

#: Which states a reported state may move a chargeback out of. ``won`` is final; a lost
#: dispute may still be won on appeal.
_MAY_LEAVE: dict[str, tuple[str, ...]] = {
    "opened": (),
    "lost": ("opened",),
    "won": ("opened", "lost"),
}
TAKE_PREFIX = "chargeback:"


def take_ids(chargeback_id: int) -> tuple[str, str]:
    """The transfer ids of what a chargeback took: from cash, and owed."""
    return f"{TAKE_PREFIX}{chargeback_id}:cash", f"{TAKE_PREFIX}{chargeback_id}:debt"


def return_ids(chargeback_id: int) -> tuple[str, str]:
    """The transfer ids of a won chargeback's return: to the debt, and to cash."""
    return f"{TAKE_PREFIX}{chargeback_id}:won:debt", f"{TAKE_PREFIX}{chargeback_id}:won:cash"


async def _lock_wallet(conn: AsyncConnection, user_id: int) -> Any:
    row = (await conn.execute(
        select(wallets).where(wallets.c.user_id == user_id).with_for_update()
    )).first()
    if row is None:
        raise NotFound("the top-up's owner has no wallet")
    return row


async def _move(conn: AsyncConnection, user_id: int, *, cash: int = 0, debt: int = 0) -> None:
    await conn.execute(update(wallets).where(wallets.c.user_id == user_id).values(
        cash_balance=wallets.c.cash_balance + cash, debt=wallets.c.debt + debt))


async def _take_back(conn: AsyncConnection, cb: Any, topup: Any, now: datetime) -> None:
    """The chargeback's amount out of the wallet: its cash as far as it goes, then owed."""
    wallet = await _lock_wallet(conn, topup.user_id)
    from_cash = min(int(wallet.cash_balance), int(cb.amount))
    owed = int(cb.amount) - from_cash
    clearing = L.provider_clearing(topup.provider)
    cash_id, debt_id = take_ids(cb.id)
    for tid, source, amount in ((cash_id, L.user_cash(topup.user_id), from_cash),
                                (debt_id, L.user_receivable(topup.user_id), owed)):
        if amount:
            await journal.post(conn, kind=L.TransferKind.chargeback, currency=L.KRW,
                               from_account=source, to_account=clearing, amount=amount,
                               now=now, transfer_id=tid)
    await _move(conn, topup.user_id, cash=-from_cash, debt=owed)


async def _give_back(conn: AsyncConnection, cb: Any, topup: Any, now: datetime) -> None:
    """A won chargeback's amount back to the wallet: the debt paid down first, then cash."""
    wallet = await _lock_wallet(conn, topup.user_id)
    to_debt = min(int(wallet.debt), int(cb.amount))
    to_cash = int(cb.amount) - to_debt
    clearing = L.provider_clearing(topup.provider)
    debt_id, cash_id = return_ids(cb.id)
    for tid, target, amount in ((debt_id, L.user_receivable(topup.user_id), to_debt),
                                (cash_id, L.user_cash(topup.user_id), to_cash)):
        if amount:
            await journal.post(conn, kind=L.TransferKind.chargeback_won, currency=L.KRW,
                               from_account=clearing, to_account=target, amount=amount,
                               now=now, transfer_id=tid)
    await _move(conn, topup.user_id, cash=to_cash, debt=-to_debt)


async def refunded(conn: AsyncConnection, topup_id: int) -> int:
    """What of a top-up our own refunds have taken out (pending or paid)."""
    return int(await conn.scalar(
        select(func.coalesce(func.sum(topup_refunds.c.amount), 0)).where(
            topup_refunds.c.topup_id == topup_id,
            topup_refunds.c.state.in_(("pending", "succeeded")))
    ) or 0)


async def standing(conn: AsyncConnection, topup_ids: Sequence[int]) -> dict[int, int]:
    """KRW of each of these top-ups taken back by chargebacks not won."""
    if not topup_ids:
        return {}
    rows = await conn.execute(
        select(chargebacks.c.topup_id, func.sum(chargebacks.c.amount))
        .where(chargebacks.c.topup_id.in_(topup_ids), chargebacks.c.state != "won")
        .group_by(chargebacks.c.topup_id))
    return {int(t): int(a) for t, a in rows}


async def _room(conn: AsyncConnection, topup: Any) -> int:
    """What of a top-up may still be charged back: its amount, less other chargebacks
    standing (not won) and our own refunds."""
    taken = int(await conn.scalar(
        select(func.coalesce(func.sum(chargebacks.c.amount), 0)).where(
            chargebacks.c.topup_id == topup.id, chargebacks.c.state != "won")
    ) or 0)
    return int(topup.amount) - taken - await refunded(conn, topup.id)


def chargeback_out(row: Any) -> dict[str, Any]:
    return {"id": row.id, "topup_id": row.topup_id,
            "provider_dispute_id": row.provider_dispute_id, "amount": row.amount,
            "state": row.state, "reason": row.reason, "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at)}


async def apply_dispute(
    conn: AsyncConnection, *, provider: str, dispute: ProviderDispute, now: datetime
) -> dict[str, Any]:
    """Bring a chargeback in line with the provider's dispute, once per dispute id.

    Only a completed top-up is taken back (an uncredited one has nothing to give back), by
    at most what is left of it. The owner's wallet row is locked before the dispute is
    looked up, so duplicate deliveries run one after the other and the later one finds the
    first one's row.
    """
    topup = (await conn.execute(select(topups).where(
        topups.c.provider == provider,
        topups.c.provider_payment_id == dispute.provider_payment_id))).first()
    if topup is None:
        raise NotFound("no top-up with that payment id")
    if topup.status != "completed":
        return {"topup_id": topup.id, "state": None, "applied": False}
    if dispute.currency != topup.currency:
        raise PaymentMismatch(f"the dispute is in {dispute.currency}, the top-up in "
                              f"{topup.currency}")
    await _lock_wallet(conn, topup.user_id)
    row = (await conn.execute(select(chargebacks).where(
        chargebacks.c.provider_dispute_id == dispute.dispute_id))).first()
    if row is None:
        amount = min(dispute.amount, await _room(conn, topup))
        if amount <= 0:
            return {"topup_id": topup.id, "state": None, "applied": False}
        row = (await conn.execute(insert(chargebacks).values(
            topup_id=topup.id, provider_dispute_id=dispute.dispute_id, amount=amount,
            state=dispute.state, reason=(dispute.reason or "")[:300] or None,
            created_at=now, updated_at=now).returning(*chargebacks.c))).one()
        await _take_back(conn, row, topup, now)
        if dispute.state == "won":  # reported only once closed: taken and given back
            await _give_back(conn, row, topup, now)
        return {**chargeback_out(row), "applied": True}
    if row.state not in _MAY_LEAVE[dispute.state]:
        return {**chargeback_out(row), "applied": False}
    row = (await conn.execute(update(chargebacks).where(chargebacks.c.id == row.id).values(
        state=dispute.state, updated_at=now).returning(*chargebacks.c))).one()
    if dispute.state == "won":
        await _give_back(conn, row, topup, now)
    return {**chargeback_out(row), "applied": True}


async def repay_debt(
    conn: AsyncConnection, *, user_id: int, now: datetime, transfer_id: str | None = None,
    required: bool = False,
) -> dict[str, int]:
    """Pay a wallet's debt from its cash, as far as the cash goes.

    ``required``: a debt with no cash to pay it is refused (insufficient funds) rather
    than left as it is."""
    wallet = await _lock_wallet(conn, user_id)
    amount = min(int(wallet.cash_balance), int(wallet.debt))
    if amount == 0 and required and wallet.debt > 0:
        raise InsufficientFunds(f"no cash to repay the debt of {wallet.debt} KRW with; "
                                f"top up first")
    if amount:
        await journal.post(conn, kind=L.TransferKind.debt_repayment, currency=L.KRW,
                           from_account=L.user_cash(user_id),
                           to_account=L.user_receivable(user_id), amount=amount, now=now,
                           transfer_id=transfer_id)
        await _move(conn, user_id, cash=-amount, debt=-amount)
    return {"repaid": amount, "cash_balance": int(wallet.cash_balance) - amount,
            "debt": int(wallet.debt) - amount}


async def debt_of(conn: AsyncConnection, user_id: int) -> int:
    return int(await conn.scalar(
        select(wallets.c.debt).where(wallets.c.user_id == user_id)) or 0)


async def list_chargebacks(conn: AsyncConnection, user_id: int, *, limit: int
                           ) -> list[dict[str, Any]]:
    """A user's chargebacks, newest first."""
    rows = await conn.execute(
        select(chargebacks).join(topups, topups.c.id == chargebacks.c.topup_id)
        .where(topups.c.user_id == user_id)
        .order_by(chargebacks.c.created_at.desc(), chargebacks.c.id.desc()).limit(limit))
    return [chargeback_out(r) for r in rows]
