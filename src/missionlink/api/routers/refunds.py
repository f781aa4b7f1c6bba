"""Refunds of top-ups to the original payment method (docs/payments.md, "Refunds")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.api.deps import CurrentUser, Deps, IdempotencyKey
from missionlink.api.effects import request_path, respond
from missionlink.api.params import Limit, PathId
from missionlink.api.problems import MEDIA_TYPE, Problem
from missionlink.api.schemas.payments import RefundIn, RefundList, RefundOut, TopupRefunds
from missionlink.services import idempotency, refunds, wallet

router = APIRouter(prefix="/api/v1", tags=["wallet"])

_REFUSED: dict[int | str, dict[str, Any]] = {
    202: {"model": RefundOut, "description": "the refund, held and asked of the provider: "
                                             "`succeeded` at once with the sandbox, else "
                                             "usually `pending` until the provider settles it"},
    409: {"model": Problem, "content": {MEDIA_TYPE: {}},
          "description": "`topup-not-refundable` (not completed, another provider, or a "
                         "refund of it still pending); `refund-window-closed` "
                         "(REFUND_WINDOW_DAYS after completion passed); "
                         "`refund-exceeds-refundable` (more than the top-up less its "
                         "refunds and chargebacks, or than the unspent cash; `refundable` "
                         "says how much); `wallet-in-debt` (a chargeback's debt is unpaid)"},
}


def _window(c: Deps) -> timedelta:
    return timedelta(days=c.settings.refund_window_days)


@router.post("/wallet/topups/{topup_id}/refunds", status_code=202, response_model=None,
             responses=_REFUSED)
async def create_refund(
    topup_id: PathId, body: RefundIn, request: Request, user: CurrentUser, c: Deps,
    key: IdempotencyKey,
) -> JSONResponse:
    """Give unspent cash of a top-up back to the payment method it came from: the cash is
    held first, then the provider is asked; a replay answers the refund as it is now."""
    raw = await request.body()
    path = request_path(request)

    async def work(conn: AsyncConnection) -> tuple[int, Any]:
        return 202, await refunds.request_refund(
            conn, user_id=user.user_id, topup_id=topup_id, amount=body.amount,
            reason=body.reason, key=key, provider=c.payments.name, now=c.clock.now(),
            window=_window(c))

    stored = await idempotency.run(
        c.core_db, user_id=user.user_id, key=key,
        fingerprint_=idempotency.fingerprint(request.method, path, raw), now=c.clock.now(),
        ttl_seconds=c.settings.idempotency_ttl_seconds, work=work)
    refund = await refunds.ask_provider(c.core_db, c.payments, refund_id=stored.body["id"],
                                        now=c.clock.now())
    return await respond(c, idempotency.StoredResponse(202, refund, stored.replayed),
                         path=path)


@router.get("/wallet/refunds", response_model=RefundList)
async def list_refunds(user: CurrentUser, c: Deps, limit: Limit = 20) -> dict[str, Any]:
    """The caller's latest refunds, newest first, with their states."""
    async with c.core_db.read() as conn:
        return {"items": await refunds.list_refunds(conn, user.user_id, limit=limit)}


@router.get("/wallet/topups/{topup_id}/refunds", response_model=TopupRefunds)
async def topup_refunds(topup_id: PathId, user: CurrentUser, c: Deps) -> dict[str, Any]:
    """One top-up's refunds, and what of it may be refunded now."""
    async with c.core_db.read() as conn:
        await wallet.topup_of(conn, user.user_id, topup_id)
        items = await refunds.list_refunds(conn, user.user_id, limit=100, topup_id=topup_id)
        left = await refunds.refundable_of(conn, user.user_id, [topup_id],
                                           provider=c.payments.name, now=c.clock.now(),
                                           window=_window(c))
    return {"items": items, "refundable": left.get(topup_id, 0)}
