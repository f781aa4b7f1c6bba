"""Fan board rules (pure: no I/O): text limits and who may edit or delete what."""

from __future__ import annotations

from dataclasses import dataclass

from missionlink.domain import text
from missionlink.domain.errors import Forbidden
from missionlink.domain.text import TextRule

TITLE_MAX = 200
BODY_MAX = 20_000
COMMENT_MAX = 2_000
SEARCH_MAX = 100
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Actor:
    user_id: int
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE


TITLE = TextRule(TITLE_MAX)
BODY = TextRule(BODY_MAX, multiline=True)
COMMENT = TextRule(COMMENT_MAX, multiline=True)
SEARCH = TextRule(SEARCH_MAX, required=False)


def check_title(value: str) -> str:
    return text.check("title", value, TITLE)


def check_body(value: str) -> str:
    return text.check("body", value, BODY)


def check_comment(value: str) -> str:
    return text.check("body", value, COMMENT)


def check_edit(actor: Actor, *, author_id: int) -> None:
    """Only the author edits a post."""
    if actor.user_id != author_id:
        raise Forbidden("only the author can edit this post")


def check_comment_edit(actor: Actor, *, author_id: int) -> None:
    """Only the author edits a comment, as with posts."""
    if actor.user_id != author_id:
        raise Forbidden("only the author can edit this comment")


def check_delete(actor: Actor, *, author_id: int, streamer_id: int) -> None:
    """The author, the channel's streamer and admins delete."""
    if actor.user_id in (author_id, streamer_id) or actor.is_admin:
        return
    raise Forbidden("only the author, the channel's streamer or an admin can delete this")


def check_search(query: str | None) -> str | None:
    """The trimmed search text, or None to list everything."""
    cleaned = None if query is None else text.check("q", query, SEARCH)
    return cleaned or None


def like_pattern(query: str) -> str:
    """A ``LIKE`` pattern matching ``query`` as a literal substring (escape char ``\\``)."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def thread_title(mission_title: str) -> str:
    return mission_title.strip()[:TITLE_MAX] or "Mission"


RESULT_TEXT = {
    "succeeded": "미션 성공! Mission succeeded.",
    "failed": "미션 실패 — 후원금은 환불되었습니다. Mission failed; pledges were refunded.",
    "rejected": "스트리머가 미션을 거절했습니다 — 후원금은 환불되었습니다. "
    "The streamer rejected the mission; pledges were refunded.",
    "cancelled": "제안자가 미션을 취소했습니다 — 후원금은 환불되었습니다. "
    "The mission was cancelled; pledges were refunded.",
    "expired": "기한이 지나 미션이 만료되었습니다 — 후원금은 환불되었습니다. "
    "The mission expired; pledges were refunded.",
}


def result_comment(status: str, total_pledged: int) -> str:
    outcome = RESULT_TEXT.get(status, f"Mission ended: {status}.")
    return f"{outcome}\n총 후원 Total pledged: {total_pledged:,} KRW"
