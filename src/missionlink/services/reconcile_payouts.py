"""Ledger invariants of streamer payouts (docs/payments.md, "Payouts"), registered with
``services/reconcile.py``'s ``@invariant`` and run after the others:

- the withdrawal clearing account holds the net of every withdrawal on its way (requested
  or exported), and the bank account what was paid;
- the withholding account holds the tax of every withdrawal not failed;
- each withdrawal has exactly the journal transfers its state calls for, of its amounts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import transfers
from missionlink.adapters.db.payout_tables import withdrawals
from missionlink.domain import ledger as L
from missionlink.domain import payouts as P
from missionlink.services.reconcile import Books, invariant

K = L.TransferKind
#: The transfers of one withdrawal: (kind, from, to, amount), ``cash`` its owner's cash.
_LEGS = {
    K.withdrawal: ("cash", L.WITHDRAWAL_CLEARING, "net"),
    K.withholding: ("cash", L.WITHHOLDING_ACCOUNT, "tax"),
    K.withdrawal_paid: (L.WITHDRAWAL_CLEARING, L.PAYOUT_BANK, "net"),
    K.withdrawal_failed: (L.WITHDRAWAL_CLEARING, "cash", "net"),
    K.withholding_back: (L.WITHHOLDING_ACCOUNT, "cash", "tax"),
}
#: Which of them each state has.
_BY_STATE = {
    "requested": (K.withdrawal, K.withholding),
    "exported": (K.withdrawal, K.withholding),
    "paid": (K.withdrawal, K.withholding, K.withdrawal_paid),
    "failed": (K.withdrawal, K.withholding, K.withdrawal_failed, K.withholding_back),
}


async def _sum(conn: AsyncConnection, column: Any, *where: Any) -> int:
    return int(await conn.scalar(select(func.coalesce(func.sum(column), 0)).where(*where))
               or 0)


@invariant("withdrawal clearing holds the withdrawals on their way")
async def withdrawal_clearing(conn: AsyncConnection, books: Books) -> list[str]:
    problems = []
    on_way = await _sum(conn, withdrawals.c.net, withdrawals.c.state.in_(P.IN_FLIGHT))
    clearing = books.balances.get((L.WITHDRAWAL_CLEARING, L.KRW), 0)
    if clearing != on_way:
        problems.append(f"clearing holds {clearing}, withdrawals on their way {on_way}")
    paid = await _sum(conn, withdrawals.c.net, withdrawals.c.state == "paid")
    bank = books.balances.get((L.PAYOUT_BANK, L.KRW), 0)
    if bank != paid:
        problems.append(f"{L.PAYOUT_BANK} received {bank}, paid withdrawals {paid}")
    return problems


@invariant("withholding holds the tax of withdrawals not failed")
async def withholding_held(conn: AsyncConnection, books: Books) -> list[str]:
    withheld = await _sum(conn, withdrawals.c.income_tax + withdrawals.c.local_tax,
                          withdrawals.c.state.in_(P.COMMITTED))
    held = books.balances.get((L.WITHHOLDING_ACCOUNT, L.KRW), 0)
    return [] if held == withheld else [f"withholding holds {held}, withdrawals say {withheld}"]


def _expected(w: Any) -> dict[str, tuple[str, str, int]]:
    amounts = {"net": w.net, "tax": w.income_tax + w.local_tax}
    cash = L.user_cash(w.user_id)
    out = {}
    for kind in _BY_STATE[w.state]:
        src, dst, what = _LEGS[kind]
        if amounts[what]:
            out[f"{kind.value}:{w.id}"] = (cash if src == "cash" else src,
                                           cash if dst == "cash" else dst, amounts[what])
    return out


@invariant("each withdrawal's journal matches its state")
async def withdrawals_in_journal(conn: AsyncConnection, books: Books) -> list[str]:
    posted = {r.id: (r.from_account, r.to_account, r.amount) for r in await conn.execute(
        select(transfers.c.id, transfers.c.from_account, transfers.c.to_account,
               transfers.c.amount).where(transfers.c.kind.in_([k.value for k in _LEGS])))}
    problems = []
    for w in await conn.execute(select(withdrawals)):
        for tid, leg in _expected(w).items():
            got = posted.pop(tid, None)
            if got != leg:
                problems.append(f"withdrawal {w.id} ({w.state}): {tid} is {got}, "
                                f"expected {leg}")
    problems += [f"transfer {tid} has no withdrawal in that state" for tid in posted]
    return problems
