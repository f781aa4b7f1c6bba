"""``?limit=&cursor=`` parsing shared by every list endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from missionlink.api.params import Limit, parse_id
from missionlink.domain.cursors import CURSOR_MAX, CURSOR_PATTERN, decode_opaque, encode_opaque
from missionlink.domain.errors import InvalidInput


class Page:
    def __init__(self, limit: int, cursor: str | None) -> None:
        self.limit = limit
        self.cursor = cursor

    def int_cursor(self) -> int | None:
        """Cursors over integer ids are opaque base64 of the id (ASCII digits, 64-bit)."""
        if self.cursor is None:
            return None
        value = parse_id(decode_opaque(self.cursor))
        if value is None:
            raise InvalidInput.malformed_cursor()
        return value

    def int_cursor_both_ways(self) -> tuple[int | None, int | None]:
        """``(before_id, after_id)`` from a cursor of either kind: a ``next_cursor`` pages to
        older rows, a ``prev_cursor`` (text ``newer:<id>`` inside) to newer ones."""
        if self.cursor is None:
            return None, None
        text = decode_opaque(self.cursor)
        if text.startswith(NEWER_PREFIX):
            digits = text[len(NEWER_PREFIX):]
            value = 0 if digits == "0" else parse_id(digits)  # 0: newer than any row
            if value is None:
                raise InvalidInput("cursor is malformed")
            return None, value
        return self.int_cursor(), None


NEWER_PREFIX = "newer:"


def encode_newer(value: int | None) -> str | None:
    """The ``prev_cursor`` of a page: the rows newer than ``value``."""
    if value is None:
        return None
    return encode_opaque(f"{NEWER_PREFIX}{value}")


def encode_int(value: int | None) -> str | None:
    if value is None:
        return None
    return encode_opaque(str(value))


def page_params(
    limit: Limit = 20,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX, pattern=CURSOR_PATTERN)] = None,
) -> Page:
    return Page(limit, cursor or None)


PageParams = Annotated[Page, Depends(page_params)]
