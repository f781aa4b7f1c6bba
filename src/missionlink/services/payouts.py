"""Streamer payouts, the streamer's side: the payout account, what may be withdrawn, and
withdrawal requests (docs/payments.md, "Payouts").

Earnings are the streamer's ``payout`` transfers (settlement); each becomes withdrawable
``hold`` after it was paid in, so a chargeback of the top-ups behind it can still be
absorbed. Withdrawable is what has matured, less every withdrawal not failed, and never
more than the wallet's cash.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal
from missionlink.adapters.db.core_tables import transfers, wallets
from missionlink.adapters.db.payout_tables import payout_accounts, withdrawals
from missionlink.adapters.db.sql import dialect_of
from missionlink.adapters.security.vault import Vault, VaultError
from missionlink.domain import ledger as L
from missionlink.domain import payouts as P
from missionlink.domain.errors import (
    NotFound,
    NotWithdrawable,
    PayoutAccountCoolingDown,
    PayoutAccountMissing,
    PayoutsUnavailable,
)
from missionlink.domain.timestamps import iso


def require(vault: Vault | None) -> Vault:
    """The vault, or 503 ``payouts-unavailable`` when no key is configured."""
    if vault is None:
        raise PayoutsUnavailable("payouts are not configured on this server "
                                 "(PAYOUT_ACCOUNT_KEYS is empty)")
    return vault


def aad(user_id: int) -> bytes:
    """The context a sealed account is bound to: it opens only as this user's."""
    return f"payout-account:{user_id}".encode()


def seal_account(vault: Vault, user_id: int, account: P.BankAccount) -> tuple[str, str]:
    plain = json.dumps({"number": account.account_number, "holder": account.holder},
                       ensure_ascii=False).encode()
    sealed = vault.seal(plain, aad=aad(user_id))
    return sealed.blob, sealed.key_id


def open_account(vault: Vault, user_id: int, bank_code: str, blob: str) -> P.BankAccount:
    """The sealed account; 503 when none of the configured keys opens it (a key removed
    too early, or a tampered row: both for an operator, not the streamer, to fix)."""
    try:
        data = json.loads(vault.open(blob, aad=aad(user_id)))
    except VaultError as exc:
        raise PayoutsUnavailable("a payout account does not open with the configured keys"
                                 ) from exc
    return P.BankAccount(bank_code=bank_code, account_number=data["number"],
                         holder=data["holder"])


def _account_out(account: P.BankAccount, updated_at: datetime) -> dict[str, Any]:
    return {"bank_code": account.bank_code, "bank_name": account.bank_name,
            "account_number_masked": account.masked, "holder": account.holder,
            "updated_at": iso(updated_at)}


async def put_account(conn: AsyncConnection, *, user_id: int, account: P.BankAccount,
                      vault: Vault, now: datetime) -> dict[str, Any]:
    blob, kid = seal_account(vault, user_id, account)
    values = {"bank_code": account.bank_code, "account_last4": account.account_number[-4:],
              "sealed": blob, "key_id": kid, "updated_at": now}
    stmt = dialect_of(conn).insert(payout_accounts).values(user_id=user_id, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_=values))
    return _account_out(account, now)


async def get_account(conn: AsyncConnection, *, user_id: int, vault: Vault) -> dict[str, Any]:
    row = (await conn.execute(
        select(payout_accounts).where(payout_accounts.c.user_id == user_id))).first()
    if row is None:
        raise NotFound("no payout account registered")
    return _account_out(open_account(vault, user_id, row.bank_code, row.sealed),
                        row.updated_at)


async def delete_account(conn: AsyncConnection, *, user_id: int) -> None:
    """Withdrawals already requested keep their own copy of the account."""
    gone = await conn.execute(delete(payout_accounts).where(
        payout_accounts.c.user_id == user_id))
    if not gone.rowcount:
        raise NotFound("no payout account registered")


async def _sum(conn: AsyncConnection, column: Any, *where: Any) -> int:
    return int(await conn.scalar(select(func.coalesce(func.sum(column), 0)).where(*where))
               or 0)


async def summary(conn: AsyncConnection, *, user_id: int, hold: timedelta, now: datetime
                  ) -> dict[str, int]:
    """What a streamer's earnings are: in hold, withdrawable, requested (on their way) and
    paid, in KRW."""
    cash = L.user_cash(user_id)
    earned = (transfers.c.kind == L.TransferKind.payout.value, transfers.c.to_account == cash)
    matured = await _sum(conn, transfers.c.amount, *earned,
                         transfers.c.created_at <= now - hold)
    pending = await _sum(conn, transfers.c.amount, *earned, transfers.c.created_at > now - hold)
    mine = withdrawals.c.user_id == user_id
    committed = await _sum(conn, withdrawals.c.gross, mine, withdrawals.c.state.in_(P.COMMITTED))
    requested = await _sum(conn, withdrawals.c.gross, mine, withdrawals.c.state.in_(P.IN_FLIGHT))
    paid = await _sum(conn, withdrawals.c.gross, mine, withdrawals.c.state == "paid")
    wallet = (await conn.execute(select(wallets.c.cash_balance, wallets.c.debt)
                                 .where(wallets.c.user_id == user_id))).first()
    balance = int(wallet.cash_balance) if wallet is not None else 0
    # A wallet in debt (a chargeback's) withdraws nothing until the debt is repaid.
    room = 0 if wallet is not None and wallet.debt else balance
    return {"pending": pending, "withdrawable": max(0, min(matured - committed, room)),
            "requested": requested, "paid": paid, "cash_balance": balance}


def withdrawal_out(row: Any) -> dict[str, Any]:
    return {"id": row.id, "gross": row.gross, "income_tax": row.income_tax,
            "local_tax": row.local_tax, "withholding": row.income_tax + row.local_tax,
            "net": row.net, "state": row.state, "bank_code": row.bank_code,
            "account_number_masked": P.mask(row.account_last4),
            "batch_id": row.batch_id, "failure_reason": row.failure_reason,
            "created_at": iso(row.created_at), "exported_at": iso(row.exported_at),
            "completed_at": iso(row.completed_at)}


async def request_withdrawal(
    conn: AsyncConnection, *, user_id: int, amount: int, key: str, hold: timedelta,
    minimum: int, now: datetime, cooldown: timedelta,
) -> dict[str, Any]:
    """Take ``amount`` out of the wallet: the net to the withdrawal clearing account, the
    withheld taxes to the withholding account, in one transaction. Refused while the
    payout account is younger than ``cooldown``."""
    P.check_minimum(amount, minimum=minimum)
    account = (await conn.execute(
        select(payout_accounts).where(payout_accounts.c.user_id == user_id))).first()
    if account is None:
        raise PayoutAccountMissing("register a payout account before withdrawing")
    ready_at = account.updated_at + cooldown
    if now < ready_at:
        wait = ready_at - now
        raise PayoutAccountCoolingDown(
            f"the payout account was registered or changed at {iso(account.updated_at)}; "
            f"withdrawals to it open at {iso(ready_at)}",
            retry_after=max(1, math.ceil(wait.total_seconds())))
    # The wallet row is locked first: two requests at once are counted one after the other.
    debt = await conn.scalar(select(wallets.c.debt).where(wallets.c.user_id == user_id)
                             .with_for_update())
    if debt:
        raise NotWithdrawable(f"a chargeback left this wallet {debt} KRW in debt; nothing "
                              f"is withdrawable until it is repaid")
    now_sum = await summary(conn, user_id=user_id, hold=hold, now=now)
    if amount > now_sum["withdrawable"]:
        raise NotWithdrawable(f"{now_sum['withdrawable']} KRW is withdrawable now "
                              f"({now_sum['pending']} KRW still in hold)")
    tax = P.withholding_for(amount)
    row = (await conn.execute(withdrawals.insert().values(
        user_id=user_id, idempotency_key=key, gross=amount, income_tax=tax.income_tax,
        local_tax=tax.local_tax, net=tax.net, state="requested", bank_code=account.bank_code,
        account_last4=account.account_last4, sealed=account.sealed, key_id=account.key_id,
        created_at=now).returning(*withdrawals.c))).one()
    await journal.debit_wallet(conn, user_id, L.KRW, amount)
    cash = L.user_cash(user_id)
    await journal.post(conn, kind=L.TransferKind.withdrawal, currency=L.KRW,
                       from_account=cash, to_account=L.WITHDRAWAL_CLEARING, amount=tax.net,
                       now=now, transfer_id=f"withdrawal:{row.id}")
    if tax.total:
        await journal.post(conn, kind=L.TransferKind.withholding, currency=L.KRW,
                           from_account=cash, to_account=L.WITHHOLDING_ACCOUNT,
                           amount=tax.total, now=now, transfer_id=f"withholding:{row.id}")
    return withdrawal_out(row)


async def list_withdrawals(conn: AsyncConnection, *, user_id: int, limit: int
                           ) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(withdrawals).where(withdrawals.c.user_id == user_id)
        .order_by(withdrawals.c.created_at.desc(), withdrawals.c.id.desc()).limit(limit))
    return [withdrawal_out(r) for r in rows]
