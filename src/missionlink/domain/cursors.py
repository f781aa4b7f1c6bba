"""Opaque page cursors: unpadded base64url of UTF-8 text, decoded strictly (pure, no I/O)."""

from __future__ import annotations

import base64
import binascii
import re

from missionlink.domain.errors import InvalidInput

CURSOR_MAX = 200
#: What the API document states: the alphabet only; what the text inside says is checked here.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def encode_opaque(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_opaque(cursor: str) -> str:
    """The text inside a cursor; InvalidInput (422) for anything ``encode_opaque`` never wrote.

    The lenient decoder skips characters outside the alphabet and ignores stray trailing
    bits, so one position would have many spellings; only the exact encoding is taken.
    """
    if len(cursor) > CURSOR_MAX or not _B64URL.fullmatch(cursor):
        raise InvalidInput.malformed_cursor()
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput.malformed_cursor() from exc
    if encode_opaque(text) != cursor:
        raise InvalidInput.malformed_cursor()
    return text
