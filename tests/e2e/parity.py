"""Comparing an answer of the front layer with the app's own answer to the same request."""

from __future__ import annotations

from typing import Any

import httpx

#: Headers whose value is per response: the date and a generated request id.
VARYING = frozenset({"date", "x-request-id"})


def headers_of(r: httpx.Response, *ignored: str) -> list[tuple[str, str]]:
    """Every header, in order, but the ones that vary per response and ``ignored``."""
    skip = VARYING | set(ignored)
    return [(k.lower(), v) for k, v in r.headers.multi_items() if k.lower() not in skip]


def shape(r: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    return r.status_code, r.content, headers_of(r)


async def same(fast: httpx.AsyncClient, normal: httpx.AsyncClient, method: str, path: str,
               **kw: Any) -> httpx.Response:
    """The same request through both apps: status, body and headers must agree."""
    a = await fast.request(method, path, **kw)
    b = await normal.request(method, path, **kw)
    assert shape(a) == shape(b), path
    assert ("x-request-id" in a.headers) == ("x-request-id" in b.headers)
    return a
