"""Ledger accounts and the maths of money: integer KRW and integer points only."""

from __future__ import annotations

from enum import StrEnum

from missionlink.domain.errors import InsufficientFunds

KRW = "KRW"
PTS = "PTS"

PLATFORM_FEE_ACCOUNT = "platform:fee"
PLATFORM_POINTS_ACCOUNT = "platform:points"
#: Withdrawals' net amounts between a streamer's wallet and the bank transfer.
WITHDRAWAL_CLEARING = "withdrawal:clearing"
#: Income tax and local income tax withheld from withdrawals, until remitted.
WITHHOLDING_ACCOUNT = "tax:withholding"
#: Money the bank sent to streamers' accounts: leaves the books here.
PAYOUT_BANK = "bank:payouts"


class TransferKind(StrEnum):
    topup = "topup"
    pledge = "pledge"
    refund = "refund"
    payout = "payout"
    fee = "fee"
    signup_bonus = "signup_bonus"
    pledge_points = "pledge_points"
    bet = "bet"
    bet_payout = "bet_payout"
    bet_refund = "bet_refund"
    bet_dust = "bet_dust"
    #: A top-up refund: held (cash to the provider's refunds-pending account), then paid
    #: (to the provider's clearing account) or reversed (back to the cash).
    topup_refund = "topup_refund"
    topup_refund_paid = "topup_refund_paid"
    topup_refund_reversal = "topup_refund_reversal"
    withdrawal = "withdrawal"
    withholding = "withholding"
    withdrawal_paid = "withdrawal_paid"
    withdrawal_failed = "withdrawal_failed"
    withholding_back = "withholding_back"
    chargeback = "chargeback"
    chargeback_won = "chargeback_won"
    debt_repayment = "debt_repayment"


def user_cash(user_id: int) -> str:
    return f"user:{user_id}:cash"


def user_points(user_id: int) -> str:
    return f"user:{user_id}:points"


def user_receivable(user_id: int) -> str:
    """What a user owes the platform after a chargeback took back more than their cash.

    Its journal balance is minus the wallet's ``debt``: a chargeback beyond the cash is
    posted from it, and repayments and won disputes are posted to it."""
    return f"user:{user_id}:receivable"


def escrow(mission_id: int) -> str:
    return f"mission:{mission_id}:escrow"


def stake_pool(mission_id: int) -> str:
    return f"mission:{mission_id}:pool"


def provider_clearing(provider: str) -> str:
    return f"provider:{provider}"


def refunds_pending(provider: str) -> str:
    """Cash on its way back to payers through ``provider``: refunds asked, not yet settled."""
    return f"provider:{provider}:refunds_pending"


def fee_for(total: int, fee_bps: int) -> int:
    """The platform's share of a payout: ``floor(total * fee_bps / 10000)``."""
    return total * fee_bps // 10_000


#: Points earned by pledging: one per this many KRW (settlement applies it in SQL).
KRW_PER_POINT = 100


def points_for_pledged(amount: int) -> int:
    """Points earned by pledging: one per ``KRW_PER_POINT`` KRW, rounded down."""
    return amount // KRW_PER_POINT


def insufficient_funds(currency: str, amount: int) -> InsufficientFunds:
    """The refusal of a debit larger than the wallet's balance, in the domain's words."""
    what = "cash" if currency == KRW else "points"
    return InsufficientFunds(f"not enough {what} in the wallet for {amount}")
