"""The message a backer may send with a pledge, and the words it may not show.

A message is optional single-line text of at most ``MESSAGE_MAX`` characters, shown next to
the backer's name on the mission page, in the backers list and in the overlay's alert, so
it follows the rules of a name (no bidirectional controls). Blocked words are masked, not
refused: a pledge is never lost to a filter, and the masked form is what is stored, so no
copy of the word reaches a page, an event or an overlay.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from missionlink.domain.text import TextRule, check

MESSAGE_MAX = 100
MESSAGE = TextRule(MESSAGE_MAX, required=False, name=True)
MASK = "*"


def blocked_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for ``words`` (NFC, blanks dropped), longest first so a
    longer word is masked whole; None when there are none."""
    cleaned = sorted({unicodedata.normalize("NFC", w).strip() for w in words} - {""},
                     key=len, reverse=True)
    if not cleaned:
        return None
    return re.compile("|".join(re.escape(w) for w in cleaned), re.IGNORECASE)


def mask(text: str, blocked: re.Pattern[str] | None) -> str:
    """``text`` with each blocked word replaced by as many ``*`` as it has characters."""
    if blocked is None:
        return text
    return blocked.sub(lambda m: MASK * len(m.group(0)), text)


def message_of(value: str | None, blocked: re.Pattern[str] | None) -> str | None:
    """The message as stored: cleaned (422 with the reason when refused), masked, and None
    when absent or blank."""
    if value is None:
        return None
    text = check("message", value, MESSAGE)
    return mask(text, blocked) or None
