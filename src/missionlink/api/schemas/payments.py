"""Top-ups as the API returns them (docs/payments.md): their states and outcome."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

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
    refundable: int | None = Field(
        default=None, description="KRW that may be refunded now (0 when it may not); in "
                                  "the list and the single top-up")


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


RefundState = Literal["pending", "succeeded", "failed"]


class RefundIn(BaseModel):
    """POST /wallet/topups/{id}/refunds; without ``amount``, all that is refundable."""

    model_config = ConfigDict(extra="forbid")

    amount: StrictInt | None = Field(default=None, ge=1, le=1_000_000_000,
                                     description="KRW to refund; all that is refundable "
                                                 "when left out")
    reason: str | None = Field(default=None, max_length=100,
                               description="the payer's words, kept with the refund")


class RefundOut(BaseModel):
    id: int
    topup_id: int
    amount: int
    currency: Literal["KRW"]
    state: RefundState = Field(description="pending (cash held, the provider asked), "
                                           "succeeded (paid back), failed (reversed to cash)")
    provider_refund_id: str | None = Field(description="the provider's id of the refund "
                                                       "(PortOne cancellation, Stripe re_…)")
    reason: str | None
    failure_reason: str | None = Field(description="failed: the provider's words")
    created_at: str
    settled_at: str | None


class RefundList(BaseModel):
    items: list[RefundOut]


class TopupRefunds(RefundList):
    refundable: int = Field(description="KRW of this top-up that may be refunded now")
class WalletOut(BaseModel):
    cash_balance: int
    points_balance: int
    debt: int = Field(description="KRW a chargeback took back beyond the cash there was; "
                                  "while above 0, pledges and bets are refused "
                                  "(`wallet-in-debt`)")


class ChargebackOut(BaseModel):
    id: int
    topup_id: int
    provider_dispute_id: str = Field(
        description="Stripe's dispute id, or PortOne's `{paymentId}:{cancellationId}`")
    amount: int = Field(description="KRW taken back (at most what is left of the top-up)")
    state: Literal["opened", "lost", "won"] = Field(
        description="as the provider reports the dispute: opened (taken back while it "
                    "runs), lost (taken back for good), won (given back)")
    reason: str | None
    created_at: str
    updated_at: str


class ChargebackList(BaseModel):
    items: list[ChargebackOut]


class DebtRepaid(BaseModel):
    repaid: int = Field(description="KRW moved from cash to the debt by this request")
    cash_balance: int
    debt: int
