"""Words the server writes itself (the CSV statement, the journal's labels), in Korean and
English; the pages carry their own in ``web/templates/pages/strings.json``.

Account names such as ``user:3:cash`` are the ledger's, never a reader's: ``account_label``
turns each into what a wallet owner calls it.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["ko", "en"]
LANGUAGES: tuple[Language, ...] = ("ko", "en")
DEFAULT_LANGUAGE: Language = "ko"


def weighted(header: str | None) -> list[tuple[str, float]]:
    """``Accept`` or ``Accept-Language`` values with their ``q``, best first (stable)."""
    found: list[tuple[str, float]] = []
    for part in (header or "").split(","):
        tag, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, number = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(number)
                except ValueError:
                    q = 0.0
        if tag:
            found.append((tag.lower(), q))
    return sorted(found, key=lambda pair: -pair[1])


def pick_language(asked: str | None, accept_language: str | None,
                  stored: str | None = None) -> Language:
    """``lang`` when given, then the first of the browser's languages we speak, then the
    user's own setting; Korean otherwise."""
    candidates = [(asked or "", 1.0), *weighted(accept_language), (stored or "", 1.0)]
    for tag, q in candidates:
        primary = tag.split("-")[0]
        if q > 0 and primary == "ko":
            return "ko"
        if q > 0 and primary == "en":
            return "en"
    return DEFAULT_LANGUAGE


def speaks(accept_language: str | None) -> bool:
    """Whether a browser's ``Accept-Language`` names a language we speak."""
    return any(t.split("-")[0] in LANGUAGES and q > 0 for t, q in weighted(accept_language))


#: What each kind of transfer is, as a statement line says it.
KINDS: dict[str, dict[Language, str]] = {
    "topup": {"ko": "충전", "en": "Top-up"},
    "pledge": {"ko": "후원", "en": "Pledge"},
    "refund": {"ko": "환불", "en": "Refund"},
    "payout": {"ko": "지급", "en": "Payout"},
    "fee": {"ko": "수수료", "en": "Fee"},
    "signup_bonus": {"ko": "가입 포인트", "en": "Signup points"},
    "pledge_points": {"ko": "후원 포인트", "en": "Pledge points"},
    "bet": {"ko": "베팅", "en": "Bet"},
    "bet_payout": {"ko": "예측 적중 지급", "en": "Bet payout"},
    "bet_refund": {"ko": "베팅 환불", "en": "Bet refund"},
    "bet_dust": {"ko": "베팅 잔여분", "en": "Bet rounding"},
    "topup_refund": {"ko": "충전 환불", "en": "Top-up refund"},
    "topup_refund_paid": {"ko": "충전 환불 완료", "en": "Top-up refund paid"},
    "topup_refund_reversal": {"ko": "충전 환불 취소", "en": "Top-up refund reversed"},
    "withdrawal": {"ko": "출금", "en": "Withdrawal"},
    "withholding": {"ko": "원천징수", "en": "Withholding"},
    "withdrawal_paid": {"ko": "출금 입금", "en": "Withdrawal paid"},
    "withdrawal_failed": {"ko": "출금 실패 환급", "en": "Withdrawal returned"},
    "withholding_back": {"ko": "원천징수 환급", "en": "Withholding returned"},
    "chargeback": {"ko": "차지백", "en": "Chargeback"},
    "chargeback_won": {"ko": "차지백 반환", "en": "Chargeback reversed"},
    "debt_repayment": {"ko": "미수금 상환", "en": "Debt repayment"},
}

_OTHER_KIND: dict[Language, str] = {"ko": "기타", "en": "Other"}


def kind_label(kind: str, lang: Language) -> str:
    return KINDS.get(kind, _OTHER_KIND)[lang]


#: Payment providers by their ledger name.
PROVIDERS: dict[str, dict[Language, str]] = {
    "sandbox": {"ko": "테스트 결제", "en": "Test payment"},
    "portone": {"ko": "PortOne 결제", "en": "PortOne payment"},
    "stripe": {"ko": "Stripe 카드 결제", "en": "Stripe card payment"},
}

#: Accounts by pattern: ``{n}`` is a number (a user or a mission), ``{name}`` a word.
_ACCOUNTS: list[tuple[re.Pattern[str], dict[Language, str]]] = [
    (re.compile(r"user:\d+:cash"), {"ko": "현금 지갑", "en": "Cash wallet"}),
    (re.compile(r"user:\d+:points"), {"ko": "포인트 지갑", "en": "Points wallet"}),
    (re.compile(r"user:\d+:receivable"), {"ko": "미수금", "en": "Debt"}),
    (re.compile(r"mission:\d+:escrow"), {"ko": "미션 보관금", "en": "Mission escrow"}),
    (re.compile(r"mission:\d+:pool"), {"ko": "승부 예측 풀", "en": "Prediction pool"}),
    (re.compile(r"platform:fee"), {"ko": "플랫폼 수수료", "en": "Platform fee"}),
    (re.compile(r"platform:points"), {"ko": "MissionLink 포인트", "en": "MissionLink points"}),
    (re.compile(r"provider:[a-z0-9_-]+:refunds_pending"),
     {"ko": "결제 취소 처리 중", "en": "Refund to payment method (pending)"}),
    (re.compile(r"withdrawal:clearing"), {"ko": "출금 처리 중", "en": "Withdrawal in progress"}),
    (re.compile(r"tax:withholding"), {"ko": "원천징수 세금", "en": "Tax withheld"}),
    (re.compile(r"bank:payouts"), {"ko": "내 은행 계좌", "en": "Your bank account"}),
]

_PROVIDER = re.compile(r"provider:([a-z0-9_-]+)")
_OTHER_ACCOUNT: dict[Language, str] = {"ko": "MissionLink", "en": "MissionLink"}


def account_label(account: str, lang: Language) -> str:
    """What a wallet owner calls the account on the other side of a line."""
    provider = _PROVIDER.fullmatch(account)
    if provider:
        name = provider.group(1)
        known = PROVIDERS.get(name)
        return known[lang] if known else ("결제 대행사" if lang == "ko" else "Payment provider")
    for pattern, words in _ACCOUNTS:
        if pattern.fullmatch(account):
            return words[lang]
    return _OTHER_ACCOUNT[lang]


#: Currencies as a statement names them.
CURRENCIES: dict[str, dict[Language, str]] = {
    "KRW": {"ko": "원", "en": "KRW"},
    "PTS": {"ko": "포인트", "en": "points"},
}


def currency_label(currency: str, lang: Language) -> str:
    return CURRENCIES.get(currency, {"ko": currency, "en": currency})[lang]


#: The CSV statement's columns, in order, per language (``{tz}``: the time zone shown).
STATEMENT_HEADERS: dict[Language, tuple[str, ...]] = {
    "ko": ("거래 일시 ({tz})", "구분", "미션", "상대 계정", "입금", "출금", "통화",
           "거래 후 잔액", "거래 번호"),
    "en": ("Date ({tz})", "Type", "Mission", "Counterparty", "In", "Out", "Currency",
           "Balance", "Reference"),
}


def statement_headers(lang: Language, tz_name: str) -> list[str]:
    return [h.format(tz=tz_name) for h in STATEMENT_HEADERS[lang]]
