"""Streamer payouts, the admin's side: export requested withdrawals as a bank transfer
batch, then mark each line paid or failed (docs/payments.md, "Payouts").

Each step is one conditional UPDATE out of the states it may leave, and its journal
transfers are keyed by the withdrawal's id, so a repeated step changes nothing.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import journal
from missionlink.adapters.db.core_tables import members
from missionlink.adapters.db.payout_tables import payout_accounts, payout_batches, withdrawals
from missionlink.adapters.security.vault import Vault
from missionlink.domain import ledger as L
from missionlink.domain import payouts as P
from missionlink.domain.errors import NotFound, WithdrawalState
from missionlink.domain.timestamps import iso
from missionlink.services.payouts import open_account, withdrawal_out

#: The most withdrawals one exported batch holds; the rest wait for the next.
BATCH_MAX = 1000
CSV_FIELDS = ["bank_code", "account_number", "holder", "amount", "reference"]


def reference(withdrawal_id: int) -> str:
    """What the bank shows on the streamer's statement and our books find it by."""
    return f"MLW{withdrawal_id:010d}"


async def list_withdrawals(conn: AsyncConnection, *, state: str | None, limit: int
                           ) -> list[dict[str, Any]]:
    """Newest first, each with its streamer's id and display name."""
    stmt = (select(withdrawals, members.c.display_name)
            .select_from(withdrawals.outerjoin(members,
                                               members.c.user_id == withdrawals.c.user_id))
            .order_by(withdrawals.c.id.desc()).limit(limit))
    if state is not None:
        stmt = stmt.where(withdrawals.c.state == state)
    return [{**withdrawal_out(r), "user_id": r.user_id, "display_name": r.display_name}
            for r in await conn.execute(stmt)]


def _batch_out(row: Any) -> dict[str, Any]:
    return {"id": row.id, "created_at": iso(row.created_at), "created_by": row.created_by,
            "lines": row.lines, "total_net": row.total_net}


async def export_batch(conn: AsyncConnection, *, admin_id: int, now: datetime
                       ) -> dict[str, Any]:
    """Put every requested withdrawal (up to ``BATCH_MAX``, oldest first) in a new batch."""
    rows = list(await conn.execute(
        select(withdrawals.c.id, withdrawals.c.net).where(withdrawals.c.state == "requested")
        .order_by(withdrawals.c.id).limit(BATCH_MAX).with_for_update()))
    if not rows:
        raise WithdrawalState("no requested withdrawals to export")
    batch = (await conn.execute(payout_batches.insert().values(
        created_by=admin_id, created_at=now, lines=len(rows),
        total_net=sum(r.net for r in rows)).returning(*payout_batches.c))).one()
    moved = await conn.execute(
        update(withdrawals).where(withdrawals.c.id.in_([r.id for r in rows]),
                                  withdrawals.c.state.in_(P.MAY_LEAVE["exported"]))
        .values(state="exported", batch_id=batch.id, exported_at=now))
    if moved.rowcount != len(rows):  # another export took some meanwhile: start again
        raise WithdrawalState("withdrawals changed while exporting; export again")
    return _batch_out(batch)


async def batch_csv(conn: AsyncConnection, *, batch_id: int, vault: Vault) -> str:
    """The bank transfer file of a batch: one line per withdrawal, net amounts."""
    if (await conn.scalar(select(func.count()).select_from(payout_batches)
                          .where(payout_batches.c.id == batch_id))) == 0:
        raise NotFound("no such payout batch")
    rows = await conn.execute(select(withdrawals).where(withdrawals.c.batch_id == batch_id)
                              .order_by(withdrawals.c.id))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for r in rows:
        account = open_account(vault, r.user_id, r.bank_code, r.sealed)
        writer.writerow([account.bank_code, account.account_number, account.holder, r.net,
                         reference(r.id)])
    return buf.getvalue()


async def _withdrawal(conn: AsyncConnection, withdrawal_id: int) -> Any:
    row = (await conn.execute(select(withdrawals).where(
        withdrawals.c.id == withdrawal_id))).first()
    if row is None:
        raise NotFound("no such withdrawal")
    return row


async def _move(conn: AsyncConnection, withdrawal_id: int, to: str, values: dict[str, Any]
                ) -> Any | None:
    """The withdrawal moved to ``to``; None when it is there already (a repeat)."""
    row = await _withdrawal(conn, withdrawal_id)
    if row.state == to:
        return None
    moved = (await conn.execute(
        update(withdrawals).where(withdrawals.c.id == withdrawal_id,
                                  withdrawals.c.state.in_(P.MAY_LEAVE[to]))
        .values(state=to, **values).returning(*withdrawals.c))).first()
    if moved is None:
        raise WithdrawalState(f"withdrawal {withdrawal_id} is {row.state}; it cannot become {to}")
    return moved


async def mark_paid(conn: AsyncConnection, *, withdrawal_id: int, now: datetime
                    ) -> dict[str, Any]:
    """The bank sent it: the net leaves clearing for good."""
    moved = await _move(conn, withdrawal_id, "paid", {"completed_at": now})
    if moved is None:
        return {**withdrawal_out(await _withdrawal(conn, withdrawal_id)), "applied": False}
    await journal.post(conn, kind=L.TransferKind.withdrawal_paid, currency=L.KRW,
                       from_account=L.WITHDRAWAL_CLEARING, to_account=L.PAYOUT_BANK,
                       amount=moved.net, now=now, transfer_id=f"withdrawal_paid:{moved.id}")
    return {**withdrawal_out(moved), "applied": True}


async def mark_failed(conn: AsyncConnection, *, withdrawal_id: int, reason: str,
                      now: datetime) -> dict[str, Any]:
    """The bank refused it (or an admin stopped it): the net and the tax go back to the
    streamer's wallet, and the reason is kept for them to read."""
    moved = await _move(conn, withdrawal_id, "failed",
                        {"completed_at": now, "failure_reason": reason})
    if moved is None:
        return {**withdrawal_out(await _withdrawal(conn, withdrawal_id)), "applied": False}
    cash = L.user_cash(moved.user_id)
    await journal.post(conn, kind=L.TransferKind.withdrawal_failed, currency=L.KRW,
                       from_account=L.WITHDRAWAL_CLEARING, to_account=cash, amount=moved.net,
                       now=now, transfer_id=f"withdrawal_failed:{moved.id}")
    tax = moved.income_tax + moved.local_tax
    if tax:
        await journal.post(conn, kind=L.TransferKind.withholding_back, currency=L.KRW,
                           from_account=L.WITHHOLDING_ACCOUNT, to_account=cash, amount=tax,
                           now=now, transfer_id=f"withholding_back:{moved.id}")
    await journal.credit_wallet(conn, moved.user_id, L.KRW, moved.gross)
    return {**withdrawal_out(moved), "applied": True}


async def key_usage(conn: AsyncConnection) -> dict[str, dict[str, int]]:
    """How many sealed records each key id protects, per table."""
    usage: dict[str, dict[str, int]] = {}
    for name, table in (("payout_accounts", payout_accounts), ("withdrawals", withdrawals)):
        rows = await conn.execute(select(table.c.key_id, func.count()).group_by(table.c.key_id))
        for kid, n in rows:
            usage.setdefault(kid, {})[name] = int(n)
    return usage


async def rewrap(conn: AsyncConnection, *, vault: Vault, limit: int = 500) -> int:
    """Re-wrap up to ``limit`` sealed records under another key the vault still has to
    the current key; how many. Records under a key it lacks are left (``key_usage``
    shows them)."""
    done = 0
    current = vault.current_key_id
    older = [k for k in vault.key_ids if k != current]
    for table, key in ((payout_accounts, payout_accounts.c.user_id),
                       (withdrawals, withdrawals.c.id)):
        rows = list(await conn.execute(
            select(key, table.c.sealed).where(table.c.key_id.in_(older))
            .limit(limit - done).with_for_update()))
        for ident, blob in rows:
            sealed = vault.rewrap(blob)
            await conn.execute(update(table).where(key == ident)
                               .values(sealed=sealed.blob, key_id=sealed.key_id))
        done += len(rows)
        if done >= limit:
            break
    return done
