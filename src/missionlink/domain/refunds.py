"""Refunds of top-ups to the payer's original payment method: what may be refunded, when.

A completed top-up may be refunded, in one or more parts, within ``window`` of its
completion: never more than it credited minus the refunds already pending or paid, and
never more than the cash still unspent in the wallet. One refund of a top-up is pending
at a time, so the provider's own guard on what is left to cancel stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from missionlink.domain.errors import (
    RefundExceedsRefundable,
    RefundWindowClosed,
    TopupNotRefundable,
)

RefundState = Literal["pending", "succeeded", "failed"]
REFUND_STATES: tuple[RefundState, ...] = ("pending", "succeeded", "failed")
#: Providers that give money back to the payment method (the generic ``webhook`` does not).
REFUNDING_PROVIDERS = frozenset({"sandbox", "portone", "stripe"})


@dataclass(frozen=True)
class TopupForRefund:
    """What the rules need to know about a top-up and its owner's wallet."""

    status: str
    provider: str
    amount: int
    completed_at: datetime | None
    #: KRW of this top-up's refunds that are pending or succeeded.
    refunded: int
    #: Whether one of its refunds is still pending.
    refund_pending: bool
    cash_balance: int
    #: KRW of this top-up its provider took back in chargebacks not won.
    charged_back: int = 0


def refundable(t: TopupForRefund) -> int:
    """KRW that may still be refunded: what is left of the top-up (after its refunds and
    chargebacks), up to the unspent cash."""
    return max(min(t.amount - t.refunded - t.charged_back, t.cash_balance), 0)


def closes_at(t: TopupForRefund, window: timedelta) -> datetime | None:
    return None if t.completed_at is None else t.completed_at + window


def refundable_now(t: TopupForRefund, *, provider: str, now: datetime,
                   window: timedelta) -> int:
    """What the wallet page offers: 0 for a top-up that cannot be refunded now."""
    try:
        check_refundable(t, provider=provider, now=now, window=window)
    except (TopupNotRefundable, RefundWindowClosed):
        return 0
    return refundable(t)


def check_refundable(t: TopupForRefund, *, provider: str, now: datetime,
                     window: timedelta) -> None:
    """Refuse a top-up that cannot be refunded at all now (its state, provider, window)."""
    if t.status != "completed":
        raise TopupNotRefundable(f"only a completed top-up can be refunded; this one is "
                                 f"{t.status}")
    if t.provider not in REFUNDING_PROVIDERS or t.provider != provider:
        raise TopupNotRefundable(f"this top-up was paid with {t.provider!r}, which cannot "
                                 "refund it here")
    if t.refund_pending:
        raise TopupNotRefundable("a refund of this top-up is still pending; ask again once "
                                 "it has settled")
    end = closes_at(t, window)
    if end is None or now >= end:
        raise RefundWindowClosed(f"top-ups can be refunded for {window.days} days after "
                                 "they complete")


def refund_amount(t: TopupForRefund, asked: int | None, *, provider: str, now: datetime,
                  window: timedelta) -> int:
    """The amount to refund (all that is refundable when none is asked), or a refusal."""
    check_refundable(t, provider=provider, now=now, window=window)
    left = refundable(t)
    amount = left if asked is None else asked
    if amount <= 0 or amount > left:
        raise RefundExceedsRefundable(
            f"{left} KRW of this top-up can be refunded (what it credited, less refunds, "
            "up to the unspent cash)", refundable=left)
    return amount
