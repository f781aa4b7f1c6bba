"""Streamer payouts (pure: no I/O): bank accounts, the hold, withholding tax, states.

Withholding (원천징수) on a streamer's earnings, paid out as business income from personal
services (인적용역 사업소득, 소득세법 제129조 제1항 제3호):

- income tax (소득세) is 3% of the gross amount paid;
- local income tax (지방소득세, 지방세법 제103조의13) is 10% of that income tax, so 0.3%;
- each tax is computed on its own and its part below 10 won is dropped: national revenue
  ignores fractions under 10 won (국고금관리법 제47조), and local revenue likewise
  (지방회계법 제50조). The local tax is computed from the income tax *after* that
  truncation, so 3.3% is a rule of thumb, not the formula: 123,456 KRW gives income tax
  3,700 and local tax 370 (4,070), where 3.3% would be 4,074.
- the small-amount exemption (소액부징수, 소득세법 제86조: withholding under 1,000 won is not
  collected) no longer applies to personal-service business income paid from 1 July 2024,
  so even the smallest withdrawal has its tax withheld.

The streamer receives the rest (net). The tax collected sits in the withholding account
until it is remitted to the tax office (by the 10th of the next month), outside this service.
"""

from __future__ import annotations

from dataclasses import dataclass

from missionlink.domain.errors import FieldError, InvalidInput

#: Income tax withheld from personal-service business income: 3% (300 basis points).
INCOME_TAX_BPS = 300
#: Local income tax: 10% of the income tax.
LOCAL_TAX_PERCENT_OF_INCOME_TAX = 10
#: Tax amounts are truncated to whole tens of won.
TAX_UNIT = 10

#: Korean banks and the other institutions a salary account may be held at, by their
#: three-digit financial institution code (금융기관 코드, as on transfer files).
BANK_CODES: dict[str, str] = {
    "002": "KDB산업은행", "003": "IBK기업은행", "004": "KB국민은행", "007": "수협은행",
    "011": "NH농협은행", "012": "지역농축협", "020": "우리은행", "023": "SC제일은행",
    "027": "한국씨티은행", "031": "iM뱅크(대구은행)", "032": "부산은행", "034": "광주은행",
    "035": "제주은행", "037": "전북은행", "039": "경남은행", "045": "새마을금고",
    "048": "신협", "050": "저축은행", "064": "산림조합", "071": "우체국",
    "081": "하나은행", "088": "신한은행", "089": "케이뱅크", "090": "카카오뱅크",
    "092": "토스뱅크",
}
ACCOUNT_NUMBER_MIN = 10
ACCOUNT_NUMBER_MAX = 16
HOLDER_MAX = 30

#: A withdrawal's states: ``requested`` (money out of the wallet, in clearing), ``exported``
#: (in a bank transfer batch), ``paid`` (the bank sent it), ``failed`` (given back).
WITHDRAWAL_STATES = ("requested", "exported", "paid", "failed")
#: Which states each admin step may move a withdrawal out of.
MAY_LEAVE: dict[str, tuple[str, ...]] = {
    "exported": ("requested",),
    "paid": ("exported",),
    "failed": ("requested", "exported"),
}
#: States whose money has left the wallet and not come back.
COMMITTED = ("requested", "exported", "paid")
IN_FLIGHT = ("requested", "exported")
FAILURE_REASON_MAX = 300


@dataclass(frozen=True)
class Withholding:
    gross: int
    income_tax: int
    local_tax: int

    @property
    def total(self) -> int:
        return self.income_tax + self.local_tax

    @property
    def net(self) -> int:
        return self.gross - self.total


def _truncate(amount: int) -> int:
    return amount // TAX_UNIT * TAX_UNIT


def withholding_for(gross: int) -> Withholding:
    """The taxes withheld from a payout of ``gross`` KRW (see the module's rule)."""
    if gross < 0:
        raise ValueError("gross must not be negative")
    income_tax = _truncate(gross * INCOME_TAX_BPS // 10_000)
    local_tax = _truncate(income_tax * LOCAL_TAX_PERCENT_OF_INCOME_TAX // 100)
    return Withholding(gross=gross, income_tax=income_tax, local_tax=local_tax)


@dataclass(frozen=True)
class BankAccount:
    bank_code: str
    account_number: str
    holder: str

    @property
    def bank_name(self) -> str:
        return BANK_CODES[self.bank_code]

    @property
    def masked(self) -> str:
        return mask(self.account_number)


def mask(account_number: str) -> str:
    """``***-****-1234``: only the last four digits are ever shown."""
    return f"***-****-{account_number[-4:]}"


def check_account(bank_code: str, account_number: str, holder: str) -> BankAccount:
    """A bank account as stored; every refused field at once (422)."""
    errors: list[FieldError | None] = []
    if bank_code not in BANK_CODES:
        errors.append(FieldError("bank_code", "not-allowed", "is not a known bank code",
                                 {"allowed": sorted(BANK_CODES)}))
    if not (account_number.isascii() and account_number.isdigit()
            and ACCOUNT_NUMBER_MIN <= len(account_number) <= ACCOUNT_NUMBER_MAX):
        errors.append(FieldError(
            "account_number", "invalid",
            f"must be {ACCOUNT_NUMBER_MIN} to {ACCOUNT_NUMBER_MAX} digits, without hyphens"))
    InvalidInput.raise_any(errors)
    return BankAccount(bank_code=bank_code, account_number=account_number, holder=holder)


def check_minimum(amount: int, *, minimum: int) -> None:
    """A withdrawal is at least ``minimum`` KRW (422, field code ``below-minimum``)."""
    if amount < minimum:
        raise InvalidInput.of("amount", "below-minimum",
                              f"must be at least {minimum} KRW", min=minimum)
