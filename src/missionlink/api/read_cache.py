"""HTTP side of the read model: cached bodies as responses, ``ETag``/``304``, and the short
public ``Cache-Control`` that lets a CDN absorb a spike.

The ``Cache-Control`` set here is for anonymous readers; ``SecurityHeadersMiddleware``
replaces it with ``no-store`` whenever the request carries credentials, so a response
that a logged-in caller received is never stored by a shared cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

from fastapi import Request, Response

from missionlink.api.context import AppContext
from missionlink.services.read_model import Entry, Loaded

#: One second fresh at the edge, then served stale while the edge refetches: the origin
#: sees about one request per second per edge location for a hot URL.
PUBLIC_CACHE_CONTROL = "public, max-age=1, stale-while-revalidate=5"


def matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, or ``*``)."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


#: For the OpenAPI document of every cached read.
NOT_MODIFIED: dict[int | str, dict[str, object]] = {
    304: {"description": "Not modified: the `ETag` in `If-None-Match` is still current."}
}


def entry_headers(entry: Entry) -> dict[str, str]:
    # Vary: a read may answer a logged-in caller with more (``my_bet``), so an edge must
    # never hand the anonymous copy to a request that carries a token.
    return {"ETag": entry.etag, "Cache-Control": PUBLIC_CACHE_CONTROL, "Vary": "Authorization"}


def respond(request: Request, entry: Entry) -> Response:
    headers = entry_headers(entry)
    condition = request.headers.get("if-none-match")
    if condition and matches(condition, entry.etag):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type="application/json", headers=headers)


async def cached(request: Request, container: AppContext, key: Hashable,
                 load: Callable[[], Awaitable[Loaded]]) -> Response:
    """The public read ``key`` from this replica's read model, as an HTTP response."""
    cache = container.read_cache
    cache.listen(container.broker)
    return respond(request, await cache.get(key, load))
