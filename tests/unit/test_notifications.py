from __future__ import annotations

from datetime import UTC, datetime

from missionlink.services.notifications import Recipient, Statement, build_message

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def _message(lang: str, role: str, statement: Statement, status: str = "succeeded") -> str:
    msg = build_message(
        sender="MissionLink <no-reply@missionlink.example.com>",
        recipient=Recipient(7, "fan@example.com", "팬", lang),
        message_id="<mission-1.user-7@missionlink>", mission_title="매운 라면",
        status=status, role=role, statement=statement, now=NOW,
    )
    assert msg["Message-ID"] == "<mission-1.user-7@missionlink>"
    return f"{msg['Subject']}\n{msg.get_content()}"


def test_backer_email_says_what_was_paid_and_what_came_back_bets_included() -> None:
    text = _message("ko", "backer", Statement(pledged=12_000, refunded=12_000, staked=300,
                                              stake_returned=300), status="rejected")
    assert "매운 라면" in text and "거절되었습니다" in text
    assert "후원한 금액: 12,000원" in text and "환불된 금액: 12,000원" in text
    assert "300 포인트 베팅, 300 포인트 돌려받음" in text


def test_streamer_email_shows_payout_and_fee_in_english() -> None:
    text = _message("en", "streamer", Statement(payout=13_500, fee=1_500))
    assert 'Mission "매운 라면" succeeded' in text
    assert "Payout to your wallet: 13,500 KRW (fee 1,500 KRW)." in text
    assert "You pledged" not in text and "Prediction" not in text


def test_points_line_only_when_points_were_earned() -> None:
    assert "Points earned" in _message("en", "backer", Statement(pledged=500, points_earned=5))
    assert "Points earned" not in _message("en", "backer", Statement(pledged=500))
