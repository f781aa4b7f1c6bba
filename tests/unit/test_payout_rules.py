"""Payout rules (domain/payouts.py): withholding tax with each tax truncated to 10 won,
local income tax from the truncated income tax, masking, and the bank account check."""

from __future__ import annotations

import pytest

from missionlink.domain import payouts as P
from missionlink.domain.errors import InvalidInput


@pytest.mark.parametrize(("gross", "income_tax", "local_tax"), [
    (10_000, 300, 30),          # the minimum withdrawal: 3.3% exactly
    (123_456, 3_700, 370),      # 3,703.68 -> 3,700; 370 -> 370 (3.3% would be 4,074)
    (10_999, 320, 30),          # 329.97 -> 320; 32 -> 30
    (1_000_000, 30_000, 3_000),
    (333, 0, 0),                # 9.99 won of tax is below the 10 won unit
    (340, 10, 0),               # 10.2 -> 10; local 1 -> 0
])
def test_withholding_truncates_each_tax_to_ten_won(gross: int, income_tax: int,
                                                   local_tax: int) -> None:
    tax = P.withholding_for(gross)
    assert (tax.income_tax, tax.local_tax) == (income_tax, local_tax)
    assert tax.total == income_tax + local_tax
    assert tax.net == gross - tax.total
    assert tax.income_tax % 10 == 0 and tax.local_tax % 10 == 0


def test_withholding_never_exceeds_three_point_three_percent() -> None:
    for gross in range(10_000, 200_000, 777):
        tax = P.withholding_for(gross)
        assert tax.total <= gross * 33 // 1000
        assert gross * 33 // 1000 - tax.total < 20  # two truncations of under 10 won each


def test_an_account_number_is_masked_to_its_last_four_digits() -> None:
    assert P.mask("110123456789") == "***-****-6789"
    account = P.check_account("088", "110123456789", "홍길동")
    assert account.masked == "***-****-6789" and account.bank_name == "신한은행"


def test_an_unknown_bank_and_a_hyphenated_number_are_refused_together() -> None:
    with pytest.raises(InvalidInput) as caught:
        P.check_account("999", "110-123-456789", "홍길동")
    assert [(e.field, e.code) for e in caught.value.errors] == [
        ("bank_code", "not-allowed"), ("account_number", "invalid")]


def test_a_withdrawal_below_the_minimum_is_refused_with_the_minimum() -> None:
    P.check_minimum(10_000, minimum=10_000)
    with pytest.raises(InvalidInput) as caught:
        P.check_minimum(9_990, minimum=10_000)
    error = caught.value.errors[0]
    assert (error.field, error.code, error.params) == ("amount", "below-minimum",
                                                       {"min": 10_000})
