"""Wallet, top-ups, journal lines and the payment provider's webhook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.payments.providers import WebhookEvent
from missionlink.api.deps import CurrentUser, Deps, IdempotencyKey
from missionlink.api.effects import run_effect
from missionlink.api.params import Limit, PathId
from missionlink.api.problems import MEDIA_TYPE, Problem
from missionlink.api.schemas.core import TopupIn
from missionlink.api.schemas.payments import (
    TopupConfirmed,
    TopupCreated,
    TopupList,
    TopupOut,
    WalletOut,
)
from missionlink.domain.errors import InvalidState, NotFound
from missionlink.services import chargebacks, refunds, wallet

router = APIRouter(prefix="/api/v1", tags=["wallet"])

_RETRY_AFTER = {"Retry-After": {"description": "seconds until midnight KST",
                                "schema": {"type": "integer", "minimum": 1}}}
#: The payment provider's API failed or refused us: nothing was recorded or changed.
_PROVIDER_DOWN: dict[int | str, dict[str, Any]] = {
    502: {"model": Problem, "content": {MEDIA_TYPE: {}},
          "description": "The payment provider did not answer or refused the request "
                         "(`payment-provider-unavailable`); nothing was recorded or changed"},
}


@router.get("/wallet", response_model=WalletOut)
async def get_wallet(user: CurrentUser, c: Deps) -> dict[str, int]:
    async with c.core_db.read() as conn:
        return await wallet.balances(conn, user.user_id)


@router.post(
    "/wallet/topups", status_code=201, response_model=None,
    responses={201: {"model": TopupCreated, "description": "the top-up, opened"},
               **_PROVIDER_DOWN, 409: {
        "model": Problem, "content": {MEDIA_TYPE: {}}, "headers": _RETRY_AFTER,
        "description": "`daily-topup-limit`: this top-up would take the day's (KST) top-ups "
                       "past DAILY_TOPUP_LIMIT; `retry_after` is the time to midnight KST"}},
)
async def create_topup(
    body: TopupIn, request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey
) -> JSONResponse:
    wallet.check_topup_amount(body.amount, max_topup=c.settings.max_topup)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await wallet.open_topup(
            conn, user_id=user.user_id, amount=body.amount, provider=c.payments,
            daily_limit=c.settings.daily_topup_limit, now=c.clock.now(),
        )

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.get("/wallet/topups", response_model=TopupList)
async def list_topups(user: CurrentUser, c: Deps, limit: Limit = 20) -> dict[str, Any]:
    """The user's latest top-ups, newest first, with their states."""
    async with c.core_db.read() as conn:
        items = await wallet.list_topups(conn, user.user_id, limit=limit)
        left = await refunds.refundable_of(
            conn, user.user_id, [t["id"] for t in items], provider=c.payments.name,
            now=c.clock.now(), window=timedelta(days=c.settings.refund_window_days))
    return {"items": [{**t, "refundable": left.get(t["id"], 0)} for t in items]}


@router.get("/wallet/topups/{topup_id}", response_model=TopupOut)
async def get_topup(topup_id: PathId, user: CurrentUser, c: Deps) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        out = wallet.topup_detail(await wallet.topup_of(conn, user.user_id, topup_id))
        left = await refunds.refundable_of(
            conn, user.user_id, [topup_id], provider=c.payments.name, now=c.clock.now(),
            window=timedelta(days=c.settings.refund_window_days))
    return {**out, "refundable": left.get(topup_id, 0)}


@router.post(
    "/wallet/topups/{topup_id}/confirm", response_model=TopupConfirmed,
    responses={**_PROVIDER_DOWN, 409: {
        "model": Problem, "content": {MEDIA_TYPE: {}},
        "description": "`payment-mismatch`: the provider reports a payment of another amount "
                       "or currency (the top-up is now `rejected`, nothing credited); "
                       "`invalid-state`: the top-up's provider confirms at once or by "
                       "webhook only"}},
)
async def confirm_topup(topup_id: PathId, user: CurrentUser, c: Deps) -> dict[str, Any]:
    """The browser is back from the provider's widget: fetch the payment from the provider
    (never the browser's word) and credit it if it is paid for the amount asked for."""
    async with c.core_db.read() as conn:
        row = await wallet.topup_of(conn, user.user_id, topup_id)
    if row.provider != c.payments.name:
        raise InvalidState(f"this top-up was made with {row.provider!r}, "
                           f"which is not the payment provider now")
    payment = await c.payments.fetch(row.provider_payment_id)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await wallet.apply_payment(conn, provider=row.provider, payment=payment,
                                          now=c.clock.now())

    result = await c.core_db.transaction(work)
    wallet.raise_if_rejected(result)
    return result


@router.post("/payments/webhook/{provider}", responses=_PROVIDER_DOWN)
async def payment_webhook(provider: str, request: Request, c: Deps) -> dict[str, Any]:
    """A provider's signed notice. The generic ``webhook`` provider states the outcome;
    PortOne's and Stripe's only say a payment (or a dispute) changed, so it is fetched from
    them. Money a provider took back without our asking becomes a chargeback."""
    if provider != c.payments.name or provider == "sandbox":
        raise NotFound(f"no webhook for provider {provider!r}")
    raw = await request.body()
    event = c.payments.verify_webhook(request.headers, raw, c.clock.now())
    if event is None:
        return {"applied": False, "ignored": True}
    if event.dispute_id is not None:
        return await _dispute(c, provider, event.dispute_id)
    if event.status is not None:
        status = event.status

        async def confirm(conn: AsyncConnection) -> dict[str, Any]:
            return await wallet.confirm_webhook(
                conn, provider=provider,
                event=WebhookEvent(event.provider_payment_id, status), now=c.clock.now())

        return await c.core_db.transaction(confirm)
    payment = await c.payments.fetch(event.provider_payment_id)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        now = c.clock.now()
        result = await wallet.apply_payment(conn, provider=provider, payment=payment, now=now)
        for dispute in payment.disputes:
            await chargebacks.apply_dispute(conn, provider=provider, dispute=dispute, now=now)
        return result

    result = await c.core_db.transaction(work)
    if result["status"] == "completed":
        # A cancellation or refund event: settle the top-up's pending refunds.
        await refunds.settle_for_payment(c.core_db, c.payments,
                                         provider_payment_id=event.provider_payment_id,
                                         now=c.clock.now())
    return {"id": result["id"], "status": result["status"], "applied": result["applied"]}


async def _dispute(c: Deps, provider: str, dispute_id: str) -> dict[str, Any]:
    """A dispute changed: fetch it from the provider and apply it to its top-up once."""
    dispute = await c.payments.fetch_dispute(dispute_id)
    if dispute is None:  # an inquiry: nothing was taken back
        return {"applied": False, "ignored": True}

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await chargebacks.apply_dispute(conn, provider=provider, dispute=dispute,
                                               now=c.clock.now())

    result = await c.core_db.transaction(work)
    return {"id": result.get("id"), "topup_id": result["topup_id"], "state": result["state"],
            "applied": result["applied"]}
