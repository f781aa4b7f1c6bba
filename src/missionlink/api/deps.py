"""FastAPI dependencies: the app context (``context.AppContext``), the caller, the client
address.

All are ``async def`` although none awaits: FastAPI runs sync dependencies in a thread
pool, a hop that costs more than the work itself on every request.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from missionlink.adapters.security.tokens import AccessClaims
from missionlink.api.context import AppContext
from missionlink.domain.errors import Forbidden, NotAuthenticated
from missionlink.services.sessions import recent_revocations


async def app_context(request: Request) -> AppContext:
    """What the app factory put in ``app.state.container`` (a ``bootstrap.Container``)."""
    container: AppContext = request.app.state.container
    return container


Deps = Annotated[AppContext, Depends(app_context)]


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization`` header; None without one, 401 when malformed."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("use 'Authorization: Bearer <access_token>'")
    return token.strip()


def _bearer(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization"))


async def verify_token(container: AppContext, token: str) -> AccessClaims:
    """The claims of a bearer token, having heard of ended sessions first."""
    sessions = container.sessions
    if not sessions.started:
        # Once per process: hear of ended sessions before trusting any access token.
        await sessions.start(lambda: recent_revocations(container.accounts))
    return container.tokens.verify(token)


#: Declares the bearer scheme in the OpenAPI document; ``_bearer`` does the parsing so a
#: malformed header gets our problem+json 401 rather than the framework's.
_BEARER_SCHEME = HTTPBearer(auto_error=False, description="an access token from /auth/login")
BearerScheme = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_SCHEME)]


async def current_user(request: Request, container: Deps, _: BearerScheme) -> AccessClaims:
    token = _bearer(request)
    if token is None:
        raise NotAuthenticated("this endpoint needs 'Authorization: Bearer <access_token>'")
    return await verify_token(container, token)


async def optional_user(request: Request, container: Deps) -> AccessClaims | None:
    token = _bearer(request)
    return await verify_token(container, token) if token else None


async def streamer_user(user: Annotated[AccessClaims, Depends(current_user)]) -> AccessClaims:
    if user.role != "streamer":
        raise Forbidden("only streamers have a channel")
    return user


CurrentUser = Annotated[AccessClaims, Depends(current_user)]
OptionalUser = Annotated[AccessClaims | None, Depends(optional_user)]
CurrentStreamer = Annotated[AccessClaims, Depends(streamer_user)]


#: The longest ``Idempotency-Key`` a request may carry.
IDEMPOTENCY_KEY_MAX = 255


async def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1,
                                      max_length=IDEMPOTENCY_KEY_MAX)] = None,
) -> str | None:
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


async def client_address(request: Request, container: Deps) -> str:
    """The client's address, believing forwarding headers only from trusted proxies.

    ``CLIENT_IP_HEADER`` names a header an edge sets from the connection itself (the CDN's
    viewer address); otherwise ``X-Forwarded-For`` is walked past our own proxies.
    """
    peer = request.client.host if request.client else "unknown"
    settings = container.settings
    trusted = settings.trusted_proxies
    if settings.client_ip_header and _is_trusted(peer, trusted):
        stated = request.headers.get(settings.client_ip_header, "").strip()
        if _is_address(stated):
            return stated
    forwarded = request.headers.get("x-forwarded-for")
    if not forwarded or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    # Walk from the nearest hop outwards, skipping our own proxies.
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_trusted(address: str, trusted: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in trusted:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


ClientAddress = Annotated[str, Depends(client_address)]
