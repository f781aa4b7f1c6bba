"""Result emails: what happened to a mission and what it meant for the recipient's money."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

STATUS_TEXT = {
    "ko": {
        "succeeded": "성공했습니다",
        "failed": "실패했습니다",
        "rejected": "거절되었습니다",
        "cancelled": "취소되었습니다",
        "expired": "만료되었습니다",
    },
    "en": {
        "succeeded": "succeeded",
        "failed": "failed",
        "rejected": "was rejected",
        "cancelled": "was cancelled",
        "expired": "expired",
    },
}


@dataclass(frozen=True)
class Statement:
    """The recipient's money on one mission, from the journal."""

    pledged: int = 0
    refunded: int = 0
    payout: int = 0
    fee: int = 0
    points_earned: int = 0
    staked: int = 0
    stake_returned: int = 0


@dataclass(frozen=True)
class Recipient:
    user_id: int
    email: str
    display_name: str
    language: str


#: Every sentence of the result email, per language; amounts are formatted with separators.
TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "subject": '[MissionLink] Mission "{title}" {what}',
        "headline": 'The mission "{title}" {what}.',
        "payout": "Payout to your wallet: {payout:,} KRW (fee {fee:,} KRW).",
        "pledged": "You pledged: {pledged:,} KRW.",
        "refunded": "Refunded to your wallet: {refunded:,} KRW.",
        "points": "Points earned for pledging: {points_earned:,}.",
        "bet": "Prediction: staked {staked:,} points, got back {stake_returned:,} points.",
        "thanks": "Thank you for using MissionLink.",
        "reason": "The streamer's reason: {reason}",
    },
    "ko": {
        "subject": '[MissionLink] 미션 "{title}"이(가) {what}',
        "headline": '미션 "{title}"이(가) {what}.',
        "payout": "지갑으로 지급된 금액: {payout:,}원 (수수료 {fee:,}원).",
        "pledged": "후원한 금액: {pledged:,}원.",
        "refunded": "지갑으로 환불된 금액: {refunded:,}원.",
        "points": "후원으로 적립된 포인트: {points_earned:,}.",
        "bet": "승부 예측: {staked:,} 포인트 베팅, {stake_returned:,} 포인트 돌려받음.",
        "thanks": "MissionLink를 이용해 주셔서 감사합니다.",
        "reason": "스트리머가 남긴 거절 사유: {reason}",
    },
}


def _body(lang: str, title: str, status: str, role: str, s: Statement,
          reason: str | None = None) -> tuple[str, str]:
    t = TEMPLATES[lang]
    values = {**asdict(s), "title": title, "what": STATUS_TEXT[lang][status],
              "reason": _one_line(reason or "")}
    keys = ["headline", ""]
    if status == "rejected" and values["reason"]:
        keys += ["reason", ""]
    keys += ["payout"] if role == "streamer" else ["pledged", "refunded"]
    if role != "streamer" and s.points_earned:
        keys.append("points")
    if s.staked:
        keys.append("bet")
    keys += ["", "thanks"]
    lines = [t[k].format(**values) if k else "" for k in keys]
    return t["subject"].format(**values), "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    """The streamer's words as one line of the plain-text body: stored text is already
    single-line without control characters (``REJECT_REASON``); this holds even for a row
    written some other way, so no reason can add lines or headers to the email."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def build_message(
    *,
    sender: str,
    recipient: Recipient,
    message_id: str,
    mission_title: str,
    status: str,
    role: str,
    statement: Statement,
    now: datetime,
    reject_reason: str | None = None,
) -> EmailMessage:
    lang = recipient.language if recipient.language in TEMPLATES else "ko"
    subject, body = _body(lang, mission_title, status, role, statement, reject_reason)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = formataddr((recipient.display_name, recipient.email))
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(now)
    msg["Content-Language"] = lang
    msg.set_content(body)
    return msg
