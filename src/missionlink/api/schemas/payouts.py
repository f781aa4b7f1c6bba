"""Streamer payouts as the API takes and returns them (docs/payments.md, "Payouts")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictStr

from missionlink.api.params import Amount
from missionlink.api.schemas.core import Strict
from missionlink.api.schemas.text import cleaner, schema
from missionlink.domain import payouts as P
from missionlink.domain.text import TextRule

HOLDER = TextRule(P.HOLDER_MAX, name=True)
FAILURE_REASON = TextRule(P.FAILURE_REASON_MAX)
BankCode = Annotated[StrictStr, Field(json_schema_extra={"enum": sorted(P.BANK_CODES)})]
WithdrawalStateName = Literal["requested", "exported", "paid", "failed"]


class PayoutAccountIn(Strict):
    bank_code: BankCode = Field(description="the bank's three-digit code (금융기관 코드), "
                                            "one of the listed")
    account_number: StrictStr = Field(
        min_length=P.ACCOUNT_NUMBER_MIN, max_length=P.ACCOUNT_NUMBER_MAX,
        pattern=r"^[0-9]+$", description="digits only, no hyphens")
    holder: Annotated[StrictStr, AfterValidator(cleaner(HOLDER)),
                      Field(json_schema_extra=schema(HOLDER))]


class PayoutAccountOut(BaseModel):
    bank_code: str
    bank_name: str
    account_number_masked: str = Field(description="only the last four digits: ***-****-1234")
    holder: str
    updated_at: str


class PayoutSummary(BaseModel):
    """Integer KRW."""

    pending: int = Field(description="earnings still in the hold period")
    withdrawable: int = Field(description="what a withdrawal may take now")
    requested: int = Field(description="withdrawals on their way (requested or exported)")
    paid: int = Field(description="withdrawals the bank has sent, gross")
    cash_balance: int
    hold_days: int
    minimum: int = Field(description="the smallest withdrawal")
    account: PayoutAccountOut | None = Field(description="null when none is registered")


class WithdrawalIn(Strict):
    amount: Amount


class WithdrawalOut(BaseModel):
    id: int
    gross: int = Field(description="taken from the wallet, KRW")
    income_tax: int = Field(description="3% withheld, truncated to 10 won")
    local_tax: int = Field(description="10% of the income tax, truncated to 10 won")
    withholding: int = Field(description="income_tax + local_tax")
    net: int = Field(description="sent to the bank account")
    state: WithdrawalStateName
    bank_code: str
    account_number_masked: str
    batch_id: int | None
    failure_reason: str | None = Field(description="failed: why, in the admin's words")
    created_at: str
    exported_at: str | None
    completed_at: str | None = Field(description="when it became paid or failed")


class WithdrawalList(BaseModel):
    items: list[WithdrawalOut]


class AdminWithdrawal(WithdrawalOut):
    user_id: int
    display_name: str | None = Field(description="the streamer's display name")


class AdminWithdrawalList(BaseModel):
    items: list[AdminWithdrawal]


class WithdrawalMarked(WithdrawalOut):
    applied: bool = Field(description="false when it was in that state already")


class WithdrawalFailedIn(Strict):
    reason: Annotated[StrictStr, AfterValidator(cleaner(FAILURE_REASON)),
                      Field(json_schema_extra=schema(FAILURE_REASON))]


class PayoutBatchOut(BaseModel):
    id: int
    created_at: str
    created_by: int
    lines: int
    total_net: int


class StatementMonth(BaseModel):
    month: str = Field(description="YYYY-MM (KST)")
    gross: int
    fee: int
    earnings: int
    withdrawn: int
    withholding: int
    net: int


class StatementTotal(BaseModel):
    gross: int
    fee: int
    earnings: int
    withdrawn: int
    withholding: int
    net: int


class StatementOut(BaseModel):
    year: int
    months: list[StatementMonth]
    total: StatementTotal
