"""The number policy at the edge: one bounded type for every id, amount, points and limit.

A number that a client sends (path, query string, JSON body, cursor) is a whole number
written in ASCII digits and inside the signed 64-bit range that both databases store, and
inside the field's own range. Python's ``int()`` and ``str.isdigit`` also take ``"١٢"``,
``"²"``, ``" 12"``, ``"+12"`` and ``"1_2"``; none of those is a number here. Out-of-range
values would overflow the database column (a 500), so they are refused before any query.
The bounds are part of each type, so the OpenAPI document states them (minimum and
exclusiveMaximum).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import BeforeValidator, Field, StrictInt
from pydantic_core import PydanticCustomError

INT64_MAX = 2**63 - 1
#: Upper bounds are written ``lt=2**63``: the OpenAPI document carries bounds as floats, and
#: 2**63 - 1 would round up to 2**63 there (a value the API refuses), while 2**63 is exact.
INT64_END = 2**63
#: ``[0-9]`` and not ``\d``: in Python ``\d`` matches every Unicode decimal digit.
_DIGITS = re.compile(r"[0-9]+")
_INT64_DIGITS = len(str(INT64_MAX))


def parse_int(text: str, *, low: int = 1, high: int = INT64_MAX) -> int | None:
    """``text`` as a number in ``low..high`` if it is ASCII digits and nothing else."""
    if not _DIGITS.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > _INT64_DIGITS:  # never hand int() thousands of digits
        return None
    value = int(digits)
    return value if low <= value <= high else None


def parse_id(text: str) -> int | None:
    """A row id (1 .. 2**63-1) from text such as a page URL; None when none can have it."""
    return parse_int(text)


def _ascii_digits(value: object) -> object:
    """Path and query values arrive as text; only ASCII digits go on to the integer check."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError("not-integer",
                                  "must be a whole number written in ASCII digits (0-9)")
    return value


# --- JSON bodies: a JSON integer, never a string, float or boolean ----------------------

#: A reference to a row: streamer, mission, post, comment.
BodyId = Annotated[StrictInt, Field(ge=1, lt=INT64_END)]
#: Integer KRW; the configured minimum and maximum are checked by the use case (422).
Amount = Annotated[StrictInt, Field(ge=1, lt=INT64_END, description="Integer KRW")]
#: Prediction points.
Points = Annotated[StrictInt, Field(ge=1, lt=INT64_END)]
#: A duration in whole seconds; the configured range is checked by the use case (422).
Seconds = Annotated[StrictInt, Field(ge=1, lt=INT64_END)]

# --- path and query parameters ---------------------------------------------------------

# The bounds come before the validator in each ``Annotated``: the digits check then runs
# first, and the bounds still show in the OpenAPI document as minimum/exclusiveMaximum.
_ASCII = BeforeValidator(_ascii_digits)
#: A row id in the path. 2**63 and beyond name nothing and never reach the database.
PathId = Annotated[int, Path(ge=1, lt=INT64_END), _ASCII]
#: A row id in the query string (use as ``QueryId | None`` with a default of None).
QueryId = Annotated[int, Field(ge=1, lt=INT64_END), _ASCII]
LIMIT_MAX = 100
#: Page size of every list.
Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX), _ASCII]
