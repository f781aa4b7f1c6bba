"""A streamer's public profile (pure: no I/O): the intro text, the link to their channel,
and the directory's search by name.

The intro follows the text policy (``domain/text.py``): multi-line, at most
``INTRO_MAX`` characters after NFC, may be empty (blank text is stored as empty).

The link is the one outside address the channel page shows, so it is held to a short list
of what it can be: an ``https`` address on one of the hosts of SOOP (formerly AfreecaTV),
CHZZK or YouTube, written out exactly — no credentials, no port, no other scheme, no
look-alike or longer host (``chzzk.naver.com.example.com``), only URL characters (a
pasted address with spaces or Hangul in it must be percent-encoded, as browsers copy it),
and a path beyond the site's home page. The scheme and host are stored in lower case.

The directory search is single-line text of at most a display name's length (a longer
text could match no name), under the same text policy.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from urllib.parse import urlsplit

from missionlink.domain import text
from missionlink.domain.errors import InvalidInput
from missionlink.domain.identity import DISPLAY_NAME_MAX
from missionlink.domain.text import TextRule

INTRO_MAX = 500
LINK_MAX = 300
INTRO = TextRule(INTRO_MAX, multiline=True, required=False)
NAME_SEARCH = TextRule(DISPLAY_NAME_MAX, required=False)

#: Every host a channel link may name, and the platform it belongs to.
PLATFORM_HOSTS: dict[str, str] = {
    "sooplive.co.kr": "soop", "www.sooplive.co.kr": "soop", "ch.sooplive.co.kr": "soop",
    "play.sooplive.co.kr": "soop", "afreecatv.com": "soop", "www.afreecatv.com": "soop",
    "bj.afreecatv.com": "soop", "play.afreecatv.com": "soop",
    "chzzk.naver.com": "chzzk", "m.chzzk.naver.com": "chzzk",
    "youtube.com": "youtube", "www.youtube.com": "youtube", "m.youtube.com": "youtube",
    "youtu.be": "youtube",
}
PLATFORMS = ("soop", "chzzk", "youtube")
#: RFC 3986's unreserved, reserved and ``%`` characters: what an address may hold unescaped.
_URL_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")


@dataclass(frozen=True)
class ChannelLink:
    url: str
    platform: str


def check_intro(value: str) -> str:
    """The intro as stored: surrounding whitespace dropped, blank text as no intro."""
    cleaned = text.check("intro", value, INTRO).strip()
    return "" if text.is_blank(cleaned) else cleaned


def check_name_search(query: str | None) -> str | None:
    """The trimmed search text, or None to list every streamer."""
    cleaned = None if query is None else text.check("q", query, NAME_SEARCH)
    return cleaned or None


def check_link(value: str) -> ChannelLink | None:
    """The link as stored, ``None`` for an empty one (no link), or InvalidInput saying why."""
    url = value.strip()
    if not url:
        return None
    if len(url) > LINK_MAX:
        raise _refused(f"must be at most {LINK_MAX} characters")
    if any(ch not in _URL_CHARS for ch in url):
        raise _refused("must contain only URL characters (no spaces; percent-encode others)")
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        raise _refused("must start with https://")
    if "@" in parts.netloc:
        raise _refused("must not contain a user name or password")
    host = parts.netloc.lower()
    if ":" in host:
        raise _refused("must not name a port")
    platform = PLATFORM_HOSTS.get(host)
    if platform is None:
        raise _refused("must be a SOOP, CHZZK or YouTube address (sooplive.co.kr, "
                       "afreecatv.com, chzzk.naver.com, youtube.com, youtu.be)")
    if parts.path.strip("/") == "":
        raise _refused("must point to a channel, not the site's home page")
    rest = url[len(parts.scheme) + 3 + len(parts.netloc):]
    return ChannelLink(f"https://{host}{rest}", platform)


def platform_of(url: str | None) -> str | None:
    """The platform of a stored link (``None`` without one)."""
    if not url:
        return None
    return PLATFORM_HOSTS.get(urlsplit(url).netloc)


def _refused(reason: str) -> InvalidInput:
    return InvalidInput(f"link: {reason}")
