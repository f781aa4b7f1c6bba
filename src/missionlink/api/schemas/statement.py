"""The wallet read as a statement (docs/payments.md): journal lines with their words, a
payout's breakdown, the pledges held in escrow."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PayoutBreakdown(BaseModel):
    gross: int = Field(description="KRW pledged to the mission (its escrow)")
    fee: int = Field(description="the platform's share: floor(gross * fee_bps / 10000)")
    fee_bps: int = Field(description="the fee rate in basis points, fixed at creation")
    net: int = Field(description="what the streamer's wallet received: gross - fee")


class JournalLine(BaseModel):
    id: str = Field(description="the transfer's id (for example pledge:42)")
    created_at: str
    kind: str = Field(description="topup, pledge, refund, payout, bet, ... (docs/payments.md)")
    currency: Literal["KRW", "PTS"]
    amount: int = Field(description="signed: positive into the wallet, negative out of it")
    account: str = Field(description="the caller's ledger account on this line")
    counterparty: str = Field(description="the ledger account on the other side")
    mission_id: int | None
    mission_title: str | None = Field(description="the title of the line's mission")
    kind_label: str = Field(description="what the line is, in the caller's language")
    counterparty_label: str = Field(
        description="the other side as a person calls it (Mission escrow, Platform fee, "
                    "Test payment, ...), in the caller's language")
    payout: PayoutBreakdown | None = Field(description="on a payout line: gross, fee, net")


class JournalPage(BaseModel):
    items: list[JournalLine]
    next_cursor: str | None


class EscrowItem(BaseModel):
    mission_id: int
    mission_title: str
    streamer_id: int
    streamer_name: str | None
    mission_status: str = Field(description="the mission's status now (an overdue open "
                                            "mission reads expired)")
    settlement: Literal["pending"] | None
    outcome: Literal["open", "settling"] = Field(
        description="open: pledges may still come; settling: ended, the money moves soon")
    amount: int = Field(description="KRW the caller pledged to this mission")
    pledge_count: int = Field(description="how many pledges the caller made to it")
    accept_by: str | None
    deadline_at: str | None
    result_by: str | None


class EscrowPage(BaseModel):
    total: int = Field(description="KRW of the caller's pledges held in escrow, all pages")
    items: list[EscrowItem]
    next_cursor: str | None
