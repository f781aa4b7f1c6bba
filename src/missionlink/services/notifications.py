"""Result emails: what happened to a mission and what it meant for the recipient's money."""

from __future__ import annotations

from dataclasses import dataclass
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


def _won(n: int) -> str:
    return f"{n:,}"


def _body(lang: str, title: str, status: str, role: str, s: Statement) -> tuple[str, str]:
    what = STATUS_TEXT.get(lang, STATUS_TEXT["ko"])[status]
    if lang == "en":
        subject = f"[MissionLink] Mission \"{title}\" {what}"
        lines = [f"The mission \"{title}\" {what}.", ""]
        if role == "streamer":
            lines.append(f"Payout to your wallet: {_won(s.payout)} KRW (fee {_won(s.fee)} KRW).")
        else:
            lines.append(f"You pledged: {_won(s.pledged)} KRW.")
            lines.append(f"Refunded to your wallet: {_won(s.refunded)} KRW.")
            if s.points_earned:
                lines.append(f"Points earned for pledging: {_won(s.points_earned)}.")
        if s.staked:
            lines.append(f"Prediction: staked {_won(s.staked)} points, "
                         f"got back {_won(s.stake_returned)} points.")
        lines += ["", "Thank you for using MissionLink."]
    else:
        subject = f"[MissionLink] 미션 \"{title}\"이(가) {what}"
        lines = [f"미션 \"{title}\"이(가) {what}.", ""]
        if role == "streamer":
            lines.append(f"지갑으로 지급된 금액: {_won(s.payout)}원 (수수료 {_won(s.fee)}원).")
        else:
            lines.append(f"후원한 금액: {_won(s.pledged)}원.")
            lines.append(f"지갑으로 환불된 금액: {_won(s.refunded)}원.")
            if s.points_earned:
                lines.append(f"후원으로 적립된 포인트: {_won(s.points_earned)}.")
        if s.staked:
            lines.append(f"승부 예측: {_won(s.staked)} 포인트 베팅, "
                         f"{_won(s.stake_returned)} 포인트 돌려받음.")
        lines += ["", "MissionLink를 이용해 주셔서 감사합니다."]
    return subject, "\n".join(lines) + "\n"


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
) -> EmailMessage:
    lang = recipient.language if recipient.language in STATUS_TEXT else "ko"
    subject, body = _body(lang, mission_title, status, role, statement)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = formataddr((recipient.display_name, recipient.email))
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(now)
    msg["Content-Language"] = lang
    msg.set_content(body)
    return msg
