"""The real payment providers: PortOne V2 and Stripe, through their official SDKs.

Both follow the providers' own flow. ``start`` opens a payment for the amount the server
chose (PortOne: pre-registers our payment id with its amount; Stripe: creates a
PaymentIntent) and returns what the browser's widget needs. The browser's word is never
taken: ``fetch`` asks the provider's API what was paid, and a webhook is only a signed hint
that something changed (verified by each SDK's own function), after which the payment is
fetched too. Each API's base URL is a setting, so tests point them at local fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
import stripe
from portone_server_sdk import PaymentClient
from portone_server_sdk import errors as portone_errors
from portone_server_sdk import webhook as portone_webhook
from portone_server_sdk.payment import (
    CancelledPayment,
    FailedPayment,
    PaidPayment,
    PartialCancelledPayment,
    PaymentMethodVirtualAccount,
    SucceededPaymentCancellation,
    VirtualAccountIssuedPayment,
)

from missionlink.adapters.payments.providers import (
    DisputeState,
    PaymentIntent,
    ProviderDispute,
    ProviderPayment,
    WebhookEvent,
)
from missionlink.adapters.payments.providers import unavailable as _unavailable
from missionlink.adapters.payments.refunds import PortOneRefunds, StripeRefunds
from missionlink.domain.errors import InvalidInput, NotAuthenticated

ORDER_NAME = "MissionLink 충전"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


#: Who made a PortOne cancellation: ``API`` is our own call (a refund the user asked for);
#: ``CONSOLE``, ``PORTONE_ADMIN``, ``CHARGEBACK`` (and any newer value) were not ours.
_OUR_TRIGGER = "API"


def _portone_disputes(pid: str, payment: CancelledPayment | PartialCancelledPayment
                      ) -> tuple[ProviderDispute, ...]:
    """The succeeded cancellations of a payment that we did not make: chargebacks, taken
    back for good (PortOne has no dispute to win afterwards)."""
    return tuple(
        ProviderDispute(f"{pid}:{c.id}", pid, c.total_amount, str(payment.currency), "lost",
                        reason=c.reason or None)
        for c in payment.cancellations
        if isinstance(c, SucceededPaymentCancellation) and c.trigger != _OUR_TRIGGER
    )


class PortOneProvider(PortOneRefunds):
    name = "portone"

    def __init__(self, *, api_secret: str, webhook_secret: str, store_id: str,
                 channel_key: str, base_url: str) -> None:
        self._client = PaymentClient(secret=api_secret, base_url=base_url.rstrip("/"),
                                     store_id=store_id)
        self._webhook_secret = webhook_secret
        self._store_id = store_id
        self._channel_key = channel_key

    async def start(self, *, user_id: int, amount: int, reference: str) -> PaymentIntent:
        # Pre-registering fixes the amount at PortOne: a payment of any other amount
        # under this id is refused by PortOne before it reaches the payer's card.
        try:
            await self._client.pre_register_payment_async(
                payment_id=reference, total_amount=amount, currency="KRW")
        except (portone_errors.PortOneError, httpx.HTTPError, ValueError) as exc:
            raise _unavailable("PortOne", exc) from exc
        return PaymentIntent(
            provider_payment_id=reference, completed=False,
            checkout={"provider": self.name, "store_id": self._store_id,
                      "channel_key": self._channel_key, "payment_id": reference,
                      "order_name": ORDER_NAME, "total_amount": amount, "currency": "KRW"},
        )

    async def fetch(self, provider_payment_id: str) -> ProviderPayment:
        pid = provider_payment_id
        try:
            p = await self._client.get_payment_async(payment_id=pid)
        except portone_errors.PaymentNotFoundError:
            # Pre-registered but not yet opened by the payer.
            return ProviderPayment(pid, "pending")
        except (portone_errors.PortOneError, httpx.HTTPError, ValueError) as exc:
            raise _unavailable("PortOne", exc) from exc
        if isinstance(p, PaidPayment):
            return ProviderPayment(pid, "paid", amount=p.amount.paid, currency=str(p.currency))
        if isinstance(p, PartialCancelledPayment):
            # Part was taken back before we credited anything: what is left is what was paid.
            return ProviderPayment(pid, "paid", amount=p.amount.paid - p.amount.cancelled,
                                   currency=str(p.currency),
                                   disputes=_portone_disputes(pid, p))
        if isinstance(p, VirtualAccountIssuedPayment):
            account = None
            due = None
            if isinstance(p.method, PaymentMethodVirtualAccount):
                bank = str(p.method.bank) if p.method.bank else ""
                holder = p.method.remittee_name or ""
                account = " ".join(x for x in (bank, p.method.account_number, holder) if x)
                due = _parse_time(p.method.expired_at)
            return ProviderPayment(pid, "awaiting_deposit", amount=p.amount.total,
                                   currency=str(p.currency), virtual_account=account,
                                   deposit_due_at=due)
        if isinstance(p, FailedPayment):
            return ProviderPayment(pid, "failed", reason=p.failure.reason or p.failure.pg_message
                                   or "the payment failed")
        if isinstance(p, CancelledPayment):
            reasons = [r for r in (getattr(c, "reason", None) for c in p.cancellations) if r]
            return ProviderPayment(pid, "cancelled",
                                   reason=str(reasons[0]) if reasons else "cancelled",
                                   disputes=_portone_disputes(pid, p))
        return ProviderPayment(pid, "pending")

    async def fetch_dispute(self, dispute_id: str) -> ProviderDispute | None:
        # PortOne reports money taken back as cancellations of the payment (``fetch``).
        return None

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookEvent | None:
        # The SDK checks the Standard Webhooks signature (webhook-id, webhook-timestamp,
        # webhook-signature) and a timestamp within 5 minutes of now.
        try:
            payload = body.decode()
            event = portone_webhook.verify(
                self._webhook_secret, payload,
                {k: headers[k] for k in ("webhook-id", "webhook-timestamp",
                                         "webhook-signature") if k in headers})
        except portone_webhook.WebhookVerificationError as exc:
            raise NotAuthenticated(f"webhook not verified: {exc.reason}") from exc
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput("webhook body is not a PortOne webhook") from exc
        data = getattr(event, "data", None)
        payment_id = getattr(data, "payment_id", None)
        if isinstance(event, dict):
            # Verified, but of a shape this SDK version does not know (a newer event type):
            # its payment id is enough, since the payment is fetched from PortOne anyway.
            raw = event.get("data")
            payment_id = raw.get("paymentId") if isinstance(raw, dict) else None
        if not isinstance(payment_id, str):
            return None
        return WebhookEvent(provider_payment_id=payment_id, status=None)


class _StripeHttpx(stripe.HTTPXClient):
    """Stripe's httpx client, async only, sending its encoded form body as ``content``
    (httpx deprecates raw bytes given as ``data``, which the stock client does), and giving
    up after ``TIMEOUT_SECONDS`` (not the stock 80): a top-up is opened inside a database
    transaction."""

    TIMEOUT_SECONDS = 15.0

    def __init__(self) -> None:
        super().__init__(timeout=self.TIMEOUT_SECONDS, allow_sync_methods=False)

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        kwargs.pop("data", None)
        if post_data:
            kwargs["content"] = post_data
        return [args, kwargs]


class StripeProvider(StripeRefunds):
    name = "stripe"

    def __init__(self, *, secret_key: str, publishable_key: str, webhook_secret: str,
                 base_url: str, tolerance_seconds: int) -> None:
        self._client = stripe.StripeClient(
            secret_key, base_addresses={"api": base_url.rstrip("/")},
            http_client=_StripeHttpx(), max_network_retries=2)
        self._publishable_key = publishable_key
        self._webhook_secret = webhook_secret
        self._tolerance = tolerance_seconds

    async def start(self, *, user_id: int, amount: int, reference: str) -> PaymentIntent:
        try:
            # KRW is a zero-decimal currency at Stripe: the amount is in won.
            intent = await self._client.v1.payment_intents.create_async(
                params={"amount": amount, "currency": "krw",
                        "automatic_payment_methods": {"enabled": True},
                        "metadata": {"missionlink_reference": reference,
                                     "user_id": str(user_id)}},
                options={"idempotency_key": reference},
            )
        except stripe.StripeError as exc:
            raise _unavailable("Stripe", exc) from exc
        return PaymentIntent(
            provider_payment_id=intent.id, completed=False,
            checkout={"provider": self.name, "publishable_key": self._publishable_key,
                      "client_secret": intent.client_secret, "total_amount": amount,
                      "currency": "KRW"},
        )

    async def fetch(self, provider_payment_id: str) -> ProviderPayment:
        pid = provider_payment_id
        try:
            # The charge comes along, so its refunded amount says whether to list refunds.
            intent = await self._client.v1.payment_intents.retrieve_async(
                pid, params={"expand": ["latest_charge"]})
        except stripe.StripeError as exc:
            raise _unavailable("Stripe", exc) from exc
        currency = (intent.currency or "").upper()
        if intent.status == "succeeded":
            charge: Any = intent.latest_charge
            refunded = isinstance(charge, str) or (
                charge is not None and int(charge.amount_refunded or 0) > 0)
            return ProviderPayment(pid, "paid", amount=intent.amount_received,
                                   currency=currency,
                                   disputes=await self._foreign_refunds(pid, currency)
                                   if refunded else ())
        if intent.status == "canceled":
            return ProviderPayment(pid, "cancelled",
                                   reason=intent.cancellation_reason or "cancelled")
        if intent.status == "requires_payment_method" and intent.last_payment_error:
            error: Any = intent.last_payment_error
            return ProviderPayment(pid, "failed",
                                   reason=str(getattr(error, "message", None)
                                              or getattr(error, "code", None) or "declined"))
        return ProviderPayment(pid, "pending")

    async def _foreign_refunds(self, pid: str, currency: str) -> tuple[ProviderDispute, ...]:
        """The succeeded refunds of a payment that we did not make (one from the Stripe
        dashboard, say): money taken back without our asking, so chargebacks, final at
        once. Ours carry ``metadata[missionlink_refund]`` (``StripeRefunds.refund``).
        Asked only when the payment's charge shows a refunded amount."""
        try:
            listed = await self._client.v1.refunds.list_async(
                params={"payment_intent": pid, "limit": 100})
        except stripe.StripeError as exc:
            raise _unavailable("Stripe", exc) from exc
        foreign = []
        for r in listed.data:
            metadata: Any = r.metadata
            if r.status != "succeeded" or (metadata is not None
                                           and "missionlink_refund" in metadata):
                continue
            foreign.append(ProviderDispute(
                str(r.id), pid, int(r.amount), (r.currency or currency).upper(), "lost",
                reason=str(r.reason or "") or None))
        return tuple(foreign)

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookEvent | None:
        try:
            event = stripe.Webhook.construct_event(
                body.decode(), headers.get("stripe-signature"), self._webhook_secret,
                tolerance=self._tolerance)
        except stripe.SignatureVerificationError as exc:
            raise NotAuthenticated(f"webhook not verified: {exc.user_message or exc}") from exc
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput("webhook body is not a Stripe event") from exc
        obj: Any = event.data.object.to_dict()
        kind = str(event.type)
        if kind.startswith("payment_intent."):
            return WebhookEvent(provider_payment_id=str(obj["id"]), status=None)
        if kind.startswith("charge.dispute."):
            if "id" not in obj:
                raise InvalidInput("a Stripe dispute event needs the dispute's id")
            return WebhookEvent(provider_payment_id=_id_of(obj.get("payment_intent")),
                                status=None, dispute_id=str(obj["id"]))
        if kind == "charge.refunded" or kind.startswith("refund."):
            # A refund moved: its payment intent names the top-up whose refunds to settle.
            intent = obj.get("payment_intent")
            return WebhookEvent(provider_payment_id=str(intent), status=None) \
                if isinstance(intent, str) else None
        return None

    async def fetch_dispute(self, dispute_id: str) -> ProviderDispute | None:
        try:
            dispute = await self._client.v1.disputes.retrieve_async(dispute_id)
        except stripe.StripeError as exc:
            raise _unavailable("Stripe", exc) from exc
        state = _STRIPE_DISPUTE_STATES.get(str(dispute.status))
        if state is None:  # an inquiry, or one prevented: no money was taken back
            return None
        return ProviderDispute(dispute.id, _id_of(dispute.payment_intent), dispute.amount,
                               (dispute.currency or "").upper(), state,
                               reason=str(dispute.reason or "") or None)


#: Stripe's dispute statuses that take money back, in our words. ``warning_*`` (an
#: inquiry) and ``prevented`` take nothing.
_STRIPE_DISPUTE_STATES: dict[str, DisputeState] = {
    "needs_response": "opened", "under_review": "opened",
    "appeal_needs_response": "opened", "appeal_under_review": "opened",
    "lost": "lost", "won": "won",
}


def _id_of(value: Any) -> str:
    """An expandable Stripe field's id, whether it came as an id or as the object."""
    if value is None:
        return ""
    return str(value if isinstance(value, str) else value["id"])
