"""Payment providers behind one interface.

``sandbox`` completes a top-up at once (development and tests). ``webhook`` is a real
provider's shape: the top-up stays pending until the provider calls our webhook with an
HMAC-SHA256 signature over ``"{timestamp}.{raw body}"``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from missionlink.domain.errors import InvalidInput, NotAuthenticated

SIGNATURE_HEADER = "X-MissionLink-Signature"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class PaymentIntent:
    provider_payment_id: str
    completed: bool


@dataclass(frozen=True)
class WebhookEvent:
    provider_payment_id: str
    status: str  # "completed" or "failed"


class PaymentProvider(Protocol):
    name: str

    async def start(self, *, user_id: int, amount: int) -> PaymentIntent: ...

    def verify_webhook(self, signature: str, body: bytes, now: datetime) -> WebhookEvent: ...


class SandboxProvider:
    name = "sandbox"

    async def start(self, *, user_id: int, amount: int) -> PaymentIntent:
        return PaymentIntent(provider_payment_id=f"sbx_{secrets.token_hex(12)}", completed=True)

    def verify_webhook(self, signature: str, body: bytes, now: datetime) -> WebhookEvent:
        raise NotAuthenticated("the sandbox provider sends no webhooks")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value a provider sends: ``t=<unix>,v1=<hex hmac>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookProvider:
    name = "webhook"

    def __init__(self, secret: str, tolerance_seconds: int = 300) -> None:
        self._secret = secret
        self._tolerance = tolerance_seconds

    async def start(self, *, user_id: int, amount: int) -> PaymentIntent:
        return PaymentIntent(provider_payment_id=f"pay_{secrets.token_hex(12)}", completed=False)

    def verify_webhook(self, signature: str, body: bytes, now: datetime) -> WebhookEvent:
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


def make_provider(name: str, secret: str, tolerance_seconds: int) -> PaymentProvider:
    if name == "webhook":
        return WebhookProvider(secret, tolerance_seconds)
    return SandboxProvider()
