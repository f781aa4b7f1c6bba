"""``?limit=&cursor=`` parsing shared by every list endpoint."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Depends, Query

from missionlink.domain.errors import InvalidInput


class Page:
    def __init__(self, limit: int, cursor: str | None) -> None:
        self.limit = limit
        self.cursor = cursor

    def int_cursor(self) -> int | None:
        """Cursors over integer ids are opaque base64 of the id."""
        if self.cursor is None:
            return None
        try:
            padded = self.cursor + "=" * (-len(self.cursor) % 4)
            return int(base64.urlsafe_b64decode(padded).decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("cursor is malformed") from exc


def encode_int(value: int | None) -> str | None:
    if value is None:
        return None
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def page_params(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page:
    return Page(limit, cursor or None)


PageParams = Annotated[Page, Depends(page_params)]
