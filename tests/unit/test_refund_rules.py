"""The rules of refunding a top-up (domain/refunds.py): what is left of it, up to the
unspent cash; only completed top-ups of the provider in use, one pending refund at a time,
within the window from completion."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from missionlink.domain import refunds as rules
from missionlink.domain.errors import (
    RefundExceedsRefundable,
    RefundWindowClosed,
    TopupNotRefundable,
)

DONE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=180)
TOPUP = rules.TopupForRefund(status="completed", provider="portone", amount=30_000,
                             completed_at=DONE, refunded=0, refund_pending=False,
                             cash_balance=50_000)


def amount(t: rules.TopupForRefund = TOPUP, asked: int | None = None,
           now: datetime = DONE + timedelta(days=1)) -> int:
    return rules.refund_amount(t, asked, provider="portone", now=now, window=WINDOW)


def test_all_that_is_left_when_no_amount_is_asked() -> None:
    assert amount() == 30_000
    assert amount(dataclasses.replace(TOPUP, refunded=12_000)) == 18_000
    assert amount(asked=1) == 1


def test_spent_cash_limits_the_refund() -> None:
    spent = dataclasses.replace(TOPUP, cash_balance=7_000)
    assert amount(spent) == 7_000
    with pytest.raises(RefundExceedsRefundable) as refused:
        amount(spent, asked=7_001)
    assert refused.value.refundable == 7_000


def test_never_more_than_the_top_up_less_its_refunds() -> None:
    with pytest.raises(RefundExceedsRefundable) as refused:
        amount(dataclasses.replace(TOPUP, refunded=30_000))
    assert refused.value.refundable == 0
    with pytest.raises(RefundExceedsRefundable):
        amount(asked=30_001)


@pytest.mark.parametrize("change", [
    {"status": "pending"}, {"status": "awaiting_deposit"}, {"status": "rejected"},
    {"provider": "stripe"}, {"provider": "webhook"}, {"refund_pending": True},
], ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_only_a_completed_top_up_of_this_provider_without_a_pending_refund(
    change: dict[str, object],
) -> None:
    with pytest.raises(TopupNotRefundable):
        amount(dataclasses.replace(TOPUP, **change))  # type: ignore[arg-type]


def test_the_window_runs_from_completion() -> None:
    assert amount(now=DONE + WINDOW - timedelta(seconds=1)) == 30_000
    with pytest.raises(RefundWindowClosed):
        amount(now=DONE + WINDOW)
    assert rules.refundable_now(TOPUP, provider="portone", now=DONE + WINDOW,
                                window=WINDOW) == 0
    assert rules.refundable_now(TOPUP, provider="portone", now=DONE, window=WINDOW) == 30_000
