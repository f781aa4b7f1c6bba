"""Top-ups as the API returns them (docs/payments.md): their states and outcome."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

TopupStatus = Literal["pending", "awaiting_deposit", "completed", "failed", "cancelled",
                      "rejected"]


class TopupOut(BaseModel):
    id: int
    amount: int = Field(description="KRW asked for")
    currency: Literal["KRW"]
    status: TopupStatus
    provider: str = Field(description="sandbox, webhook, portone or stripe")
    provider_payment_id: str = Field(
        description="the provider's id of the payment (PortOne: the server's own paymentId; "
                    "Stripe: the PaymentIntent's id)")
    created_at: str
    completed_at: str | None = Field(description="when it reached completed, failed, "
                                                 "cancelled or rejected")
    failure_reason: str | None = Field(description="why it ended without money")
    reported_amount: int | None = Field(description="rejected: what the provider reports paid")
    reported_currency: str | None
    virtual_account: str | None = Field(description="awaiting_deposit: bank, account number "
                                                    "and holder to deposit to")
    deposit_due_at: str | None


class TopupConfirmed(TopupOut):
    applied: bool = Field(description="whether this confirmation changed the top-up")


class TopupList(BaseModel):
    items: list[TopupOut]


class TopupCreated(BaseModel):
    """201 of POST /wallet/topups (or its replay under the same Idempotency-Key)."""

    id: int
    amount: int
    currency: Literal["KRW"]
    status: TopupStatus = Field(description="completed with the sandbox, else pending")
    provider: str
    provider_payment_id: str
    created_at: str
    completed_at: str | None
    checkout: dict[str, Any] | None = Field(
        description="what the provider's browser widget needs: PortOne {provider, store_id, "
                    "channel_key, payment_id, order_name, total_amount, currency}; Stripe "
                    "{provider, publishable_key, client_secret, total_amount, currency}; null "
                    "for sandbox and webhook")
