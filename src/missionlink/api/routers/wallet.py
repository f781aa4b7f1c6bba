"""Wallet, top-ups, journal lines and the payment provider's webhook."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.payments.providers import SIGNATURE_HEADER
from missionlink.api.deps import CurrentUser, Deps, IdempotencyKey
from missionlink.api.effects import run_effect
from missionlink.api.pagination import PageParams
from missionlink.api.schemas.core import TopupIn
from missionlink.domain.errors import NotFound
from missionlink.services import wallet

router = APIRouter(prefix="/api/v1", tags=["wallet"])


@router.get("/wallet")
async def get_wallet(user: CurrentUser, c: Deps) -> dict[str, int]:
    async with c.core_db.read() as conn:
        return await wallet.balances(conn, user.user_id)


@router.get(
    "/wallet/transactions",
    response_model=None,
    responses={200: {"description": "journal lines as JSON, or with `?format=csv` the whole "
                                    "journal as a CSV receipt export (an attachment)",
                     "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def transactions(
    user: CurrentUser, c: Deps, page: PageParams, format: Literal["json", "csv"] = "json"
) -> Any:
    if format == "csv":
        return StreamingResponse(
            _csv(c, user.user_id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="missionlink-ledger.csv"'},
        )
    async with c.core_db.read() as conn:
        items, nxt = await wallet.journal_lines(
            conn, user.user_id, limit=page.limit, cursor=page.cursor
        )
    return {"items": items, "next_cursor": nxt}


async def _csv(c: Deps, user_id: int) -> AsyncIterator[str]:
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


@router.post("/wallet/topups", status_code=201)
async def create_topup(
    body: TopupIn, request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey
) -> JSONResponse:
    wallet.check_topup_amount(body.amount, max_topup=c.settings.max_topup)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        intent = await c.payments.start(user_id=user.user_id, amount=body.amount)
        return await wallet.record_topup(
            conn, user_id=user.user_id, amount=body.amount, provider=c.payments.name,
            intent=intent, now=c.clock.now(),
        )

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.post("/payments/webhook/{provider}")
async def payment_webhook(provider: str, request: Request, c: Deps) -> dict[str, Any]:
    if provider != c.payments.name or provider == "sandbox":
        raise NotFound(f"no webhook for provider {provider!r}")
    raw = await request.body()
    event = c.payments.verify_webhook(
        request.headers.get(SIGNATURE_HEADER, ""), raw, c.clock.now()
    )

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await wallet.confirm_webhook(conn, provider=provider, event=event,
                                            now=c.clock.now())

    return await c.core_db.transaction(work)
