"""Payment providers behind one interface.

``sandbox`` completes a top-up at once (development and tests). ``webhook`` is a generic
provider's shape: the top-up stays pending until the provider calls our webhook with an
HMAC-SHA256 signature over ``"{timestamp}.{raw body}"``. ``portone`` (PortOne V2: Korean
cards, easy-pay, virtual accounts) and ``stripe`` (international cards) are real providers
(``real.py``): the browser pays with the provider's widget, and the server learns the
outcome only by fetching the payment from the provider's API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import structlog

from missionlink.domain.errors import (
    InvalidInput,
    InvalidState,
    NotAuthenticated,
    ProviderUnavailable,
)

_log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-MissionLink-Signature"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")

def unavailable(provider: str, exc: Exception) -> ProviderUnavailable:
    """The caller hears that the provider failed; the log keeps what it said."""
    _log.warning("payments.provider_error", provider=provider, error=repr(exc)[:500])
    return ProviderUnavailable(f"{provider} did not answer or refused the request; "
                               "try again later")


#: What a provider says about a payment, in our words.
PaymentState = Literal["paid", "pending", "awaiting_deposit", "failed", "cancelled"]


@dataclass(frozen=True)
class PaymentIntent:
    provider_payment_id: str
    completed: bool
    #: What the browser's payment widget needs (ids, amount, public keys); None for
    #: providers without a widget.
    checkout: dict[str, Any] | None = None


#: A chargeback's state as the provider reports its dispute.
DisputeState = Literal["opened", "lost", "won"]


@dataclass(frozen=True)
class ProviderDispute:
    """Money the provider took back from a paid payment without our asking: a dispute
    (Stripe) or a cancellation we did not make (PortOne)."""

    dispute_id: str
    provider_payment_id: str
    amount: int
    currency: str
    state: DisputeState
    reason: str | None = None


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as the provider's API reports it (never as the browser says)."""

    provider_payment_id: str
    status: PaymentState
    amount: int | None = None
    currency: str | None = None
    reason: str | None = None
    virtual_account: str | None = None
    deposit_due_at: datetime | None = None
    #: Cancellations of this payment that were not ours (PortOne): chargebacks.
    disputes: tuple[ProviderDispute, ...] = ()


#: What a provider says about a refund: paid back, still in progress, or refused.
RefundStatus = Literal["succeeded", "pending", "failed"]


@dataclass(frozen=True)
class RefundRequest:
    """A refund to ask of the provider; ``reference`` is our idempotency key for it."""

    provider_payment_id: str
    amount: int
    reference: str
    reason: str
    #: What the provider still holds of the payment before this refund (the payment less
    #: refunds already paid): PortOne refuses a cancellation when it no longer matches, so
    #: a retried call never refunds twice.
    cancellable: int
    #: The provider's id of the refund, once known: then it is looked up, not asked again.
    provider_refund_id: str | None = None


@dataclass(frozen=True)
class ProviderRefund:
    """A refund as the provider's API reports it."""

    status: RefundStatus
    provider_refund_id: str | None
    reason: str | None = None


@dataclass(frozen=True)
class WebhookEvent:
    provider_payment_id: str
    #: "completed" or "failed" as the generic webhook states it; None when the event only
    #: says something happened, and the payment must be fetched from the provider.
    status: str | None
    #: Set when the event is about a dispute (Stripe): fetch it with ``fetch_dispute``.
    dispute_id: str | None = None


class PaymentProvider(Protocol):
    name: str

    async def start(self, *, user_id: int, amount: int, reference: str) -> PaymentIntent:
        """Open a payment of ``amount`` KRW; ``reference`` is our own unique id for it."""
        ...

    async def fetch(self, provider_payment_id: str) -> ProviderPayment:
        """The payment as the provider's API reports it now."""
        ...

    async def fetch_dispute(self, dispute_id: str) -> ProviderDispute | None:
        """The dispute as the provider's API reports it now; None if it takes no money
        back (an inquiry)."""
        ...

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookEvent | None:
        """The verified event, or None for a verified event about something else."""
        ...

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        """Ask for (or, once asked, look up) a refund to the payment's original method.

        Idempotent on ``request.reference``; a provider that does not answer raises
        ``ProviderUnavailable`` (the outcome is then unknown, and the call is repeated).
        """
        ...


class SandboxProvider:
    name = "sandbox"

    async def start(self, *, user_id: int, amount: int, reference: str) -> PaymentIntent:
        return PaymentIntent(provider_payment_id=f"sbx_{secrets.token_hex(12)}", completed=True)

    async def fetch(self, provider_payment_id: str) -> ProviderPayment:
        raise InvalidState("sandbox top-ups complete at once; there is nothing to confirm")

    async def fetch_dispute(self, dispute_id: str) -> ProviderDispute | None:
        raise InvalidState("the sandbox provider has no disputes")

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookEvent | None:
        raise NotAuthenticated("the sandbox provider sends no webhooks")

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        return ProviderRefund("succeeded", request.provider_refund_id
                              or f"sbx_rf_{request.reference}"[:128])


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value a provider sends: ``t=<unix>,v1=<hex hmac>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookProvider:
    name = "webhook"

    def __init__(self, secret: str, tolerance_seconds: int = 300) -> None:
        self._secret = secret
        self._tolerance = tolerance_seconds

    async def start(self, *, user_id: int, amount: int, reference: str) -> PaymentIntent:
        return PaymentIntent(provider_payment_id=f"pay_{secrets.token_hex(12)}", completed=False)

    async def fetch(self, provider_payment_id: str) -> ProviderPayment:
        raise InvalidState("this provider confirms top-ups by its webhook only")

    async def fetch_dispute(self, dispute_id: str) -> ProviderDispute | None:
        raise InvalidState("this provider reports no disputes")

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookEvent | None:
        signature = headers.get(SIGNATURE_HEADER, "")
        parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
        stamp, given = parts.get("t", ""), parts.get("v1")
        # Unix seconds in ASCII digits: int() would take "١٢" or "1_0", and hundreds of
        # digits overflow the float comparison below.
        if given is None or not _TIMESTAMP.fullmatch(stamp):
            raise NotAuthenticated("malformed webhook signature header")
        timestamp = int(stamp)
        if abs(now.timestamp() - timestamp) > self._tolerance:
            raise NotAuthenticated("webhook timestamp outside the allowed window")
        expected = sign(self._secret, timestamp, body).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, given):
            raise NotAuthenticated("webhook signature does not match")
        try:
            data = json.loads(body)
            payment_id = str(data["payment_id"])
            status = str(data["status"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput("webhook body needs payment_id and status") from exc
        if status not in {"completed", "failed"}:
            raise InvalidInput("webhook status must be 'completed' or 'failed'")
        return WebhookEvent(provider_payment_id=payment_id, status=status)

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        raise InvalidState("this provider takes no refunds")


def make_provider(name: str, secret: str, tolerance_seconds: int) -> PaymentProvider:
    if name == "webhook":
        return WebhookProvider(secret, tolerance_seconds)
    return SandboxProvider()
