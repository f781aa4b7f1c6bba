"""The words and cells of the statement: languages, account labels, the formula guard, zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from missionlink.domain import ledger as L
from missionlink.domain.errors import InvalidInput
from missionlink.services import i18n, statement


def test_the_language_is_asked_then_the_browsers_then_the_users_own() -> None:
    assert i18n.pick_language("en", "ko-KR,ko;q=0.9", "ko") == "en"
    assert i18n.pick_language(None, "fr-FR, en;q=0.5, ko;q=0.7", "en") == "ko"
    assert i18n.pick_language(None, "fr, en;q=0", "en") == "en"
    assert i18n.pick_language(None, None, None) == "ko"
    assert i18n.speaks("en-US") and not i18n.speaks("fr, de;q=0.5") and not i18n.speaks(None)


@pytest.mark.parametrize(("account", "ko", "en"), [
    ("user:3:cash", "현금 지갑", "Cash wallet"),
    ("user:3:points", "포인트 지갑", "Points wallet"),
    ("user:3:receivable", "미수금", "Debt"),
    ("mission:4:escrow", "미션 보관금", "Mission escrow"),
    ("mission:4:pool", "승부 예측 풀", "Prediction pool"),
    ("platform:fee", "플랫폼 수수료", "Platform fee"),
    ("platform:points", "MissionLink 포인트", "MissionLink points"),
    ("provider:sandbox", "테스트 결제", "Test payment"),
    ("provider:portone", "PortOne 결제", "PortOne payment"),
    ("provider:acme", "결제 대행사", "Payment provider"),
    ("provider:portone:refunds_pending", "결제 취소 처리 중", "Refund to payment method (pending)"),
    ("tax:withholding", "원천징수 세금", "Tax withheld"),
    ("something:new", "MissionLink", "MissionLink"),
])
def test_accounts_are_named_as_a_person_calls_them(account: str, ko: str, en: str) -> None:
    assert i18n.account_label(account, "ko") == ko
    assert i18n.account_label(account, "en") == en



def test_every_kind_of_transfer_has_its_words() -> None:
    assert [k.value for k in L.TransferKind if k.value not in i18n.KINDS] == []

@pytest.mark.parametrize("text", ["=1+1", "+82", "-5", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_that_a_spreadsheet_would_run_is_written_as_text(text: str) -> None:
    assert statement.cell_text(text) == "'" + text


def test_plain_text_is_left_as_it_is() -> None:
    assert statement.cell_text("매운 라면 = 10봉") == "매운 라면 = 10봉"
    assert statement.cell_text("") == ""


def test_statement_rows_are_local_time_to_the_second_with_plain_amounts() -> None:
    line = {"id": "pledge:1", "amount": -2_000, "currency": "KRW", "kind_label": "후원",
            "mission_title": "-1 라면", "counterparty_label": "미션 보관금"}
    at = datetime(2026, 12, 3, 15, 30, 5, 123_456, tzinfo=UTC)
    zone, name = statement.time_zone(None)
    assert name == "KST" and zone.utcoffset(at) == timedelta(hours=9)
    row = statement.statement_row(line, balance=8_000, at=at, tz=zone, lang="ko")
    assert row == ["2026-12-04 00:30:05", "후원", "'-1 라면", "미션 보관금", "", 2_000, "원",
                   8_000, "pledge:1"]


def test_time_zones_are_known_names_only() -> None:
    assert statement.time_zone("UTC")[1] == "UTC"
    assert statement.time_zone("Asia/Seoul")[1] == "KST"
    assert statement.time_zone("America/New_York")[1] == "America/New_York"
    for bad in ("Mars/Olympus", "../etc/passwd", "Asia/"):
        with pytest.raises(InvalidInput):
            statement.time_zone(bad)
