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


def _reasoned(lang: str, status: str, reason: str | None) -> str:
    msg = build_message(
        sender="MissionLink <no-reply@missionlink.example.com>",
        recipient=Recipient(7, "fan@example.com", "팬", lang),
        message_id="<mission-1.user-7@missionlink>", mission_title="매운 라면",
        status=status, role="backer", statement=Statement(pledged=5_000, refunded=5_000),
        now=NOW, reject_reason=reason,
    )
    assert not msg.is_multipart() and msg.get_content_type() == "text/plain"
    return f"{msg['Subject']}\n{msg.get_content()}"


def test_a_rejected_missions_email_carries_the_streamers_reason_on_one_line() -> None:
    ko = _reasoned("ko", "rejected", "방송 시간이 <부족> & 다음에")
    assert "\n스트리머가 남긴 거절 사유: 방송 시간이 <부족> & 다음에\n" in ko
    en = _reasoned("en", "rejected", "Out of time")
    assert "\nThe streamer's reason: Out of time\n" in en
    # Without a reason, or for any other end, there is no reason line.
    assert "사유" not in _reasoned("ko", "rejected", None)
    assert "reason" not in _reasoned("en", "expired", "stale")


def test_a_reason_cannot_add_lines_or_headers_to_the_email() -> None:
    # The API refuses these; a row written some other way is still flattened.
    text = _reasoned("en", "rejected", "line one\r\nBcc: x@example.com\u2028two\x00")
    assert "The streamer's reason: line one Bcc: x@example.com two\n" in text
    assert "\nBcc:" not in text
