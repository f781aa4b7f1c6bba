"""The journal writer: post a transfer, move a wallet balance; always inside a transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import transfers, wallets
from missionlink.domain.errors import WalletInDebt
from missionlink.domain.ledger import KRW, insufficient_funds


def new_transfer_id(kind: str) -> str:
    return f"{kind}:{uuid.uuid4().hex}"


async def post(
    conn: AsyncConnection,
    *,
    kind: str,
    currency: str,
    from_account: str,
    to_account: str,
    amount: int,
    now: datetime,
    mission_id: int | None = None,
    transfer_id: str | None = None,
) -> str:
    tid = transfer_id or new_transfer_id(kind)
    await conn.execute(
        insert(transfers).values(
            id=tid,
            kind=kind,
            currency=currency,
            from_account=from_account,
            to_account=to_account,
            amount=amount,
            mission_id=mission_id,
            created_at=now,
        )
    )
    return tid


def _column(currency: str) -> str:
    return "cash_balance" if currency == KRW else "points_balance"


async def debit_wallet(conn: AsyncConnection, user_id: int, currency: str, amount: int) -> int:
    """Take ``amount`` from a user's wallet in one conditional statement; the new balance.

    This is spending (a pledge, a bet): a wallet with a chargeback's debt unpaid is refused
    (``WalletInDebt``, before insufficient funds), as ``missionlink_place_pledges`` does."""
    col = wallets.c[_column(currency)]
    result = await conn.execute(
        update(wallets)
        .where(wallets.c.user_id == user_id, col >= amount, wallets.c.debt == 0)
        .values({col: col - amount})
        .returning(col)
    )
    row = result.first()
    if row is None:
        debt = await conn.scalar(select(wallets.c.debt).where(wallets.c.user_id == user_id))
        if debt:
            raise WalletInDebt(int(debt))
        raise insufficient_funds(currency, amount)
    return int(row[0])


async def credit_wallet(conn: AsyncConnection, user_id: int, currency: str, amount: int) -> int:
    col = wallets.c[_column(currency)]
    result = await conn.execute(
        update(wallets)
        .where(wallets.c.user_id == user_id)
        .values({col: col + amount})
        .returning(col)
    )
    row = result.first()
    if row is None:
        raise LookupError(f"user {user_id} has no wallet")
    return int(row[0])
