"""Refunds at the real providers: PortOne's payment cancellation and Stripe's refunds.

Each is idempotent on our reference (``<payment id>:refund:<refund id>``). Stripe takes it as the
request's idempotency key and keeps it in the refund's metadata; PortOne cancels only while
the payment's cancellable balance is what we say it is (``currentCancellableAmount``), so a
repeated call is refused rather than paid twice, and the cancellation carries our
reference in its reason to be found again. A refusal (the provider said no) is a failed
refund; a provider that does not answer is ``ProviderUnavailable``: the outcome is unknown
and the refund stays pending until it is asked again.
"""

from __future__ import annotations

from typing import Any

import httpx
import stripe
from portone_server_sdk import PaymentClient
from portone_server_sdk import errors as portone_errors
from portone_server_sdk.payment import (
    FailedPaymentCancellation,
    RequestedPaymentCancellation,
    SucceededPaymentCancellation,
)

from missionlink.adapters.payments.providers import ProviderRefund, RefundRequest, unavailable

#: PortOne's answers that refuse a cancellation for good (not an outage, not our keys).
_PORTONE_REFUSALS: tuple[type[Exception], ...] = (
    portone_errors.CancelAmountExceedsCancellableAmountError,
    portone_errors.CancelTaxAmountExceedsCancellableTaxAmountError,
    portone_errors.CancelTaxFreeAmountExceedsCancellableTaxFreeAmountError,
    portone_errors.NegativePromotionAdjustedCancelAmountError,
    portone_errors.PaymentAlreadyCancelledError,
    portone_errors.PaymentNotFoundError,
    portone_errors.PaymentNotPaidError,
    portone_errors.PgProviderError,
    portone_errors.SumOfPartsExceedsCancelAmountError,
)


def _portone_reason(exc: Exception) -> str:
    pg = getattr(exc, "pg_message", None)
    return str(pg or getattr(exc, "message", None) or type(exc).__name__)[:300]


def _cancellation(c: Any) -> ProviderRefund | None:
    if isinstance(c, SucceededPaymentCancellation):
        return ProviderRefund("succeeded", c.id)
    if isinstance(c, FailedPaymentCancellation):
        return ProviderRefund("failed", c.id, reason=c.reason or "the cancellation failed")
    if isinstance(c, RequestedPaymentCancellation):
        return ProviderRefund("pending", c.id)
    return None


class PortOneRefunds:
    """PortOne V2: ``POST /payments/{paymentId}/cancel``, looked up in the payment's
    ``cancellations`` once asked."""

    _client: PaymentClient

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        if request.provider_refund_id is not None:
            return await self._look_up(request)
        try:
            answer = await self._client.cancel_payment_async(
                payment_id=request.provider_payment_id, amount=request.amount,
                reason=f"{request.reason[:60]} [{request.reference[:130]}]",
                current_cancellable_amount=request.cancellable)
        except portone_errors.CancellableAmountConsistencyBrokenError:
            # Asked before (the answer was lost): find that cancellation by our reference.
            return await self._look_up(request)
        except _PORTONE_REFUSALS as exc:
            # "Already cancelled" may be our own earlier call whose answer was lost: a
            # refusal is a failure only if no cancellation of ours is there.
            earlier = await self._look_up(request)
            if earlier.provider_refund_id is not None:
                return earlier
            return ProviderRefund("failed", None, reason=_portone_reason(exc))
        except (portone_errors.PortOneError, httpx.HTTPError, ValueError) as exc:
            raise unavailable("PortOne", exc) from exc
        found = _cancellation(answer.cancellation)
        return found or ProviderRefund("pending", None)

    async def _look_up(self, request: RefundRequest) -> ProviderRefund:
        try:
            payment = await self._client.get_payment_async(payment_id=request.provider_payment_id)
        except (portone_errors.PortOneError, httpx.HTTPError, ValueError) as exc:
            raise unavailable("PortOne", exc) from exc
        tag = f"[{request.reference}]"
        for c in getattr(payment, "cancellations", None) or ():
            cid, reason = getattr(c, "id", None), getattr(c, "reason", None) or ""
            if cid == request.provider_refund_id or (cid and tag in reason):
                found = _cancellation(c)
                if found is not None:
                    return found
        # Not there: the balance changed some other way (a console cancellation). It stays
        # pending for support; nothing is paid twice.
        return ProviderRefund("pending", request.provider_refund_id)


def _stripe_refund(r: Any) -> ProviderRefund:
    status = str(r.status or "pending")
    if status == "succeeded":
        return ProviderRefund("succeeded", r.id)
    if status in ("failed", "canceled"):
        return ProviderRefund("failed", r.id, reason=str(r.failure_reason or status))
    return ProviderRefund("pending", r.id)


class StripeRefunds:
    """Stripe: ``POST /v1/refunds`` with our reference as the idempotency key."""

    _client: stripe.StripeClient

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        refunds = self._client.v1.refunds
        try:
            if request.provider_refund_id is not None:
                return _stripe_refund(await refunds.retrieve_async(request.provider_refund_id))
            # Stripe forgets idempotency keys after a day: a refund asked before is found
            # by the reference in its metadata, never created twice.
            listed = await refunds.list_async(params={
                "payment_intent": request.provider_payment_id, "limit": 100})
        except stripe.StripeError as exc:
            raise unavailable("Stripe", exc) from exc
        for r in listed.data:
            metadata: Any = r.metadata
            if metadata is not None and "missionlink_refund" in metadata \
                    and metadata["missionlink_refund"] == request.reference:
                return _stripe_refund(r)
        try:
            created = await refunds.create_async(
                params={"payment_intent": request.provider_payment_id,
                        "amount": request.amount, "reason": "requested_by_customer",
                        "metadata": {"missionlink_refund": request.reference}},
                options={"idempotency_key": request.reference})
        except (stripe.InvalidRequestError, stripe.CardError) as exc:
            return ProviderRefund("failed", None,
                                  reason=str(exc.user_message or exc.code or "refused")[:300])
        except stripe.StripeError as exc:
            raise unavailable("Stripe", exc) from exc
        return _stripe_refund(created)
