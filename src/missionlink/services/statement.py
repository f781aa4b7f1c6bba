"""The wallet read like a bank statement: journal lines with their missions' titles, the
other side named in the reader's language, a payout's fee breakdown, the running balance;
the pledges still held in escrow; the CSV statement Excel opens as it should.

The raw journal (``wallet.journal_lines``) stays as it is: these add to it, never change it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import members, missions, pledges, transfers
from missionlink.domain import ledger as L
from missionlink.domain.errors import InvalidInput
from missionlink.domain.missions import MissionView, Status, effective_status
from missionlink.domain.timestamps import iso
from missionlink.services import i18n
from missionlink.services.mission_views import mission_outcome
from missionlink.services.ports import Transactions
from missionlink.services.wallet import decode_cursor, encode_cursor, journal_line

#: Korea Standard Time (no daylight saving): the statement's default clock.
KST = timezone(timedelta(hours=9), "KST")
DEFAULT_TZ = "Asia/Seoul"
_FEE = transfers.alias("fee_of_payout")


def time_zone(name: str | None) -> tuple[tzinfo, str]:
    """The zone a statement's times are written in, and how its header names it."""
    if not name or name in (DEFAULT_TZ, "KST"):
        return KST, "KST"
    if name.upper() == "UTC":
        return UTC, "UTC"
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput.of("tz", "not-allowed", "is not a known time zone",
                              detail=f"tz: {name!r} is not a known time zone") from exc


def _select(user_id: int, *, with_balance: bool = False) -> tuple[Any, set[str]]:
    """The user's transfers, newest first, with their mission (title, fee rate) and, for a
    payout, the fee the same settlement took; ``balance`` (asked for) is the running balance
    of the line's currency after it, summed in the same statement so it always adds up."""
    accounts = {L.user_cash(user_id), L.user_points(user_id)}
    columns: list[Any] = [transfers, missions.c.title.label("mission_title"),
                          missions.c.fee_bps.label("mission_fee_bps"),
                          _FEE.c.amount.label("payout_fee")]
    if with_balance:
        signed = case((transfers.c.to_account.in_(accounts), transfers.c.amount),
                      else_=-transfers.c.amount)
        columns.append(func.sum(signed).over(
            partition_by=transfers.c.currency,
            order_by=(transfers.c.created_at, transfers.c.id)).label("balance"))
    stmt = (
        select(*columns)
        .select_from(
            transfers.outerjoin(missions, missions.c.id == transfers.c.mission_id).outerjoin(
                _FEE, and_(transfers.c.kind == L.TransferKind.payout.value,
                           _FEE.c.mission_id == transfers.c.mission_id,
                           _FEE.c.kind == L.TransferKind.fee.value)))
        .where(or_(transfers.c.from_account.in_(accounts),
                   transfers.c.to_account.in_(accounts)))
        .order_by(transfers.c.created_at.desc(), transfers.c.id.desc())
    )
    return stmt, accounts


def _payout(row: Any) -> dict[str, int] | None:
    if row.kind != L.TransferKind.payout.value or row.mission_fee_bps is None:
        return None
    fee = int(row.payout_fee or 0)
    # The journal's own amounts, never a recomputation: net is what was credited.
    return {"gross": int(row.amount) + fee, "fee": fee, "fee_bps": int(row.mission_fee_bps),
            "net": int(row.amount)}


def line_out(row: Any, accounts: set[str], lang: i18n.Language) -> dict[str, Any]:
    """A journal line with the words a reader needs: the mission's title, what the line is
    and who is on the other side, in ``lang``; a payout line's breakdown."""
    line = journal_line(row, accounts)
    line["mission_title"] = row.mission_title
    line["kind_label"] = i18n.kind_label(row.kind, lang)
    line["counterparty_label"] = i18n.account_label(line["counterparty"], lang)
    line["payout"] = _payout(row)
    return line


async def journal_lines(
    conn: AsyncConnection, user_id: int, *, limit: int, cursor: str | None,
    lang: i18n.Language,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the user's journal, newest first, each line with its words."""
    stmt, accounts = _select(user_id)
    if cursor:
        at, tid = decode_cursor(cursor)
        stmt = stmt.where(or_(transfers.c.created_at < at,
                              and_(transfers.c.created_at == at, transfers.c.id < tid)))
    rows = list(await conn.execute(stmt.limit(limit + 1)))
    page = rows[:limit]
    nxt = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return [line_out(r, accounts, lang) for r in page], nxt


# --- The CSV statement -------------------------------------------------------------------

#: A spreadsheet reads a cell starting with one of these as a formula (or, for the control
#: characters, a way to one): such text is written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell_text(value: str) -> str:
    """Text as a spreadsheet must show it, never run it."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def statement_row(line: dict[str, Any], *, balance: int, at: datetime, tz: tzinfo,
                  lang: i18n.Language) -> list[str | int]:
    """One CSV row: local time to the second, words in ``lang``, amounts as plain numbers."""
    amount = int(line["amount"])
    return [
        at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
        cell_text(line["kind_label"]),
        cell_text(line["mission_title"] or ""),
        cell_text(line["counterparty_label"]),
        amount if amount > 0 else "",
        -amount if amount < 0 else "",
        cell_text(i18n.currency_label(line["currency"], lang)),
        balance,
        cell_text(line["id"]),
    ]


def _csv_text(rows: Iterable[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


#: Excel takes a CSV without a byte order mark for the machine's legacy code page
#: (CP949 in Korea) and garbles Hangul; with it, UTF-8.
BOM = "\ufeff"


async def statement_csv(
    db: Transactions, user_id: int, *, lang: i18n.Language, tz: tzinfo, tz_name: str,
    batch: int = 500,
) -> AsyncIterator[str]:
    """The whole journal of a user as a bank-statement CSV, newest first, in pieces."""
    yield BOM + _csv_text([i18n.statement_headers(lang, tz_name)])
    stmt, accounts = _select(user_id, with_balance=True)
    rows: list[list[Any]] = []
    async with db.connect_readonly() as conn:
        result = await conn.stream(stmt.execution_options(yield_per=batch))
        async for row in result:
            line = line_out(row, accounts, lang)
            rows.append(statement_row(line, balance=int(row.balance), at=row.created_at,
                                      tz=tz, lang=lang))
            if len(rows) >= batch:
                yield _csv_text(rows)
                rows = []
    yield _csv_text(rows)


# --- Escrow: pledges not settled yet ------------------------------------------------------

def _unsettled() -> Any:
    """Missions whose escrow still holds the pledges: open, or ended and not settled."""
    return or_(missions.c.settlement.is_(None), missions.c.settlement == "pending")


def _mine(user_id: int) -> Any:
    return (
        select(pledges.c.mission_id, func.sum(pledges.c.amount).label("amount"),
               func.count().label("pledge_count"))
        .select_from(pledges.join(missions, missions.c.id == pledges.c.mission_id))
        .where(pledges.c.user_id == user_id, _unsettled())
        .group_by(pledges.c.mission_id)
        .subquery()
    )


def _escrow_item(row: Any, now: datetime) -> dict[str, Any]:
    view = MissionView(
        id=row.id, streamer_id=row.streamer_id, creator_id=row.creator_id,
        status=Status(row.status), accept_by=row.accept_by, deadline_at=row.deadline_at,
        accepted_at=row.accepted_at, result_by=row.result_by or row.deadline_at)
    status = effective_status(view, now).value
    return {
        "mission_id": row.id,
        "mission_title": row.title,
        "streamer_id": row.streamer_id,
        "streamer_name": row.streamer_name,
        "mission_status": status,
        "settlement": row.settlement,
        "outcome": mission_outcome(status, row.settlement),
        "amount": int(row.amount),
        "pledge_count": int(row.pledge_count),
        "accept_by": iso(row.accept_by),
        "deadline_at": iso(row.deadline_at),
        "result_by": iso(row.result_by or row.deadline_at),
    }


async def escrow(
    conn: AsyncConnection, user_id: int, *, now: datetime, limit: int, before_id: int | None,
) -> tuple[list[dict[str, Any]], int | None, int]:
    """The user's pledges still in escrow, one item per mission (newest mission first), and
    the amount held in all of them."""
    mine = _mine(user_id)
    total = int(await conn.scalar(select(func.coalesce(func.sum(mine.c.amount), 0))) or 0)
    stmt = (
        select(missions, members.c.display_name.label("streamer_name"), mine.c.amount,
               mine.c.pledge_count)
        .select_from(mine.join(missions, missions.c.id == mine.c.mission_id)
                     .outerjoin(members, members.c.user_id == missions.c.streamer_id))
        .order_by(missions.c.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        stmt = stmt.where(missions.c.id < before_id)
    rows = list(await conn.execute(stmt))
    page = rows[:limit]
    nxt = page[-1].id if len(rows) > limit else None
    return [_escrow_item(r, now) for r in page], nxt, total
