"""The wallet read like a bank statement: journal lines with titles and words in the
caller's language, the pledges held in escrow, the CSV statement (docs/payments.md)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from missionlink.api.deps import CurrentUser, Deps
from missionlink.api.pagination import PageParams, encode_int
from missionlink.api.schemas.statement import EscrowPage, JournalPage
from missionlink.services import i18n, identity, statement, wallet

router = APIRouter(prefix="/api/v1", tags=["wallet"])

Lang = Annotated[Literal["ko", "en"] | None, Query(
    description="the language of labels and CSV headers; default: the browser's "
                "Accept-Language, then the user's own language")]
TimeZone = Annotated[str | None, Query(
    max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+\-/]*$",
    description="the CSV statement's time zone (an IANA name such as Asia/Seoul or UTC); "
                "default Asia/Seoul (KST)")]
Format = Annotated[Literal["json", "csv", "raw_csv"], Query(
    description="json: a page of lines; csv: the whole journal as a bank-statement CSV; "
                "raw_csv: the whole journal as the ledger's own CSV (UTC, account names)")]


async def _language(request: Request, c: Deps, user_id: int, asked: str | None
                    ) -> i18n.Language:
    accept = request.headers.get("accept-language")
    if asked or i18n.speaks(accept):
        return i18n.pick_language(asked, accept)
    me = await identity.profile(c.accounts, user_id=user_id)
    return i18n.pick_language(None, None, me.language)


_CSV = {"text/csv": {"schema": {"type": "string"}}}


@router.get(
    "/wallet/transactions",
    response_model=None,
    responses={200: {"model": JournalPage,
                     "description": "journal lines as JSON, newest first; with `?format=csv` "
                                    "the whole journal as a bank-statement CSV, with "
                                    "`?format=raw_csv` as the ledger's own CSV (attachments)",
                     "content": _CSV}},
)
async def transactions(
    request: Request, user: CurrentUser, c: Deps, page: PageParams, format: Format = "json",
    lang: Lang = None, tz: TimeZone = None,
) -> Any:
    if format == "raw_csv":
        return _attachment(_raw_csv(c, user.user_id), "missionlink-ledger.csv")
    language = await _language(request, c, user.user_id, lang)
    headers = {"Content-Language": language, "Vary": "Accept-Language"}
    if format == "csv":
        zone, zone_name = statement.time_zone(tz)
        body = statement.statement_csv(c.core_db, user.user_id, lang=language, tz=zone,
                                       tz_name=zone_name)
        return _attachment(body, "missionlink-statement.csv", headers)
    async with c.core_db.read() as conn:
        items, nxt = await statement.journal_lines(
            conn, user.user_id, limit=page.limit, cursor=page.cursor, lang=language)
    return JSONResponse({"items": items, "next_cursor": nxt}, headers=headers)


def _attachment(body: AsyncIterator[str], name: str,
                headers: dict[str, str] | None = None) -> StreamingResponse:
    return StreamingResponse(
        body, media_type="text/csv; charset=utf-8",
        headers={**(headers or {}), "Content-Disposition": f'attachment; filename="{name}"'})


async def _raw_csv(c: Deps, user_id: int) -> AsyncIterator[str]:
    """The ledger's own lines as they were always exported: account names, UTC."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=wallet.CSV_FIELDS)
    writer.writeheader()
    count = 0
    async for line in wallet.stream_lines(c.core_db, user_id):
        writer.writerow(line)
        count += 1
        if count % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


@router.get("/wallet/escrow", response_model=EscrowPage)
async def wallet_escrow(user: CurrentUser, c: Deps, page: PageParams) -> dict[str, Any]:
    """The caller's pledges still held in escrow (missions open, or ended and not settled
    yet), one item per mission, newest mission first; ``total`` is all of them."""
    async with c.core_db.read() as conn:
        items, nxt, total = await statement.escrow(
            conn, user.user_id, now=c.clock.now(), limit=page.limit,
            before_id=page.int_cursor())
    return {"total": total, "items": items, "next_cursor": encode_int(nxt)}
