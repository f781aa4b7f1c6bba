"""The lean route for ``POST /api/v1/missions/{mission_id}/pledges``.

A hyped mission's pledges arrive by the thousand a second, and the profile of a pledge
showed the HTTP stack (routing, dependency solving, request validation, seven middleware
layers) costing more CPU than the pledge itself. The ordinary pledge — a bearer token, a
JSON body that is exactly ``{"amount": <integer>}`` with the declared length, an optional
``Idempotency-Key`` — is answered here, in front of the app, through the very same steps
the route takes: the token check, the pledge rate limit, the request fingerprint, the
pledge port (``Container.pledges``) and ``effects.respond``. Its answer goes out through
the same request-id and security-header layers, with the same problem documents, and is
counted under the same route template.

Anything else goes to the app, body included, untouched: no or a malformed
``Authorization``, a token that does not verify, an ``Origin`` (CORS answers it), a
chunked or large body, another content type, a body that is not exactly the one field, an
id or key outside policy. Nothing has been counted or written when a request is passed on.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from missionlink.adapters.security.tokens import AccessClaims
from missionlink.api.deps import verify_token
from missionlink.api.effects import respond
from missionlink.api.middleware import SecurityHeadersMiddleware
from missionlink.api.params import INT64_END, parse_id
from missionlink.api.problems import (
    UNAVAILABLE,
    domain_problem,
    internal_error,
    unavailable_problem,
)
from missionlink.bootstrap import Container
from missionlink.domain.errors import DomainError
from missionlink.observability.http import (
    RequestIdMiddleware,
    record_request,
    report_unhandled,
    request_id_of,
)
from missionlink.services import idempotency

TEMPLATE = "/api/v1/missions/{mission_id}/pledges"
MISSIONS = "/api/v1/missions/"
PLEDGES = "/pledges"
#: ``{"amount": 1000000}`` is 17 bytes; anything near this long is not an ordinary pledge.
MAX_BODY = 128
#: The most an ``Idempotency-Key`` may be (the route's header bound).
MAX_KEY = 255
#: Where the parsed pledge waits for the answering app, in the request's scope.
_PLEDGE = "missionlink.pledge"
_PASS_ON = frozenset({b"origin", b"transfer-encoding"})
_NOT_VERIFIED: tuple[type[Exception], ...] = (DomainError, *UNAVAILABLE)


class FastPledge:
    """Pure ASGI in front of ``app`` (the front layer and the FastAPI app behind it)."""

    def __init__(self, app: ASGIApp, *, container: Container, hsts: bool, cors: bool,
                 auth_cookies: tuple[str, ...]) -> None:
        self.app = app
        self.container = container
        self.cors = cors
        self._answer: ASGIApp = RequestIdMiddleware(SecurityHeadersMiddleware(
            self._place, hsts=hsts, auth_cookies=auth_cookies))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(MISSIONS) and path.endswith(PLEDGES):
                mission_id = parse_id(path[len(MISSIONS):-len(PLEDGES)])
                if mission_id is not None:
                    await self._pledge(scope, receive, send, mission_id)
                    return
        await self.app(scope, receive, send)

    async def _pledge(self, scope: Scope, receive: Receive, send: Send,
                      mission_id: int) -> None:
        started = time.perf_counter()
        asked = _ordinary(scope)
        if asked is None:
            await self.app(scope, receive, send)
            return
        token, key, length = asked
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body: nobody to answer
            body += message.get("body", b"")
            more = message.get("more_body", False)
        replay = _replaying(body, receive)
        amount = _amount(body) if len(body) == length else None
        claims: AccessClaims | None = None
        if amount is not None:
            try:
                claims = await verify_token(self.container, token)
            except _NOT_VERIFIED:
                claims = None  # the app answers 401 or 503 with its own words
        if claims is None:
            await self.app(scope, replay, send)
            return
        scope[_PLEDGE] = (claims.user_id, mission_id, amount, key, body)
        status = 500

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._answer(scope, replay, counted)
        finally:
            record_request("POST", TEMPLATE, status, started, request_id=request_id_of(scope))

    async def _place(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route's body, behind the request-id and security-header layers."""
        c = self.container
        user_id, mission_id, amount, key, body = scope.pop(_PLEDGE)
        response: Response
        try:
            await c.limiter.hit(f"pledge:{user_id}",
                                limit=c.settings.rate_limit_pledges_per_minute, window=60,
                                what="pledges")
            fingerprint = idempotency.fingerprint("POST", Request(scope).url.path, body)
            stored = await c.pledges.place(now=c.clock.now(), user_id=user_id,
                                           mission_id=mission_id, amount=amount, key=key,
                                           fingerprint=fingerprint)
            response = await respond(c, stored)
        except DomainError as exc:
            response = domain_problem(exc)
        except UNAVAILABLE as exc:
            response = unavailable_problem(scope, exc, TEMPLATE)
        except Exception as exc:
            report_unhandled(scope, exc, TEMPLATE)
            response = internal_error(request_id_of(scope))
        # Inside the security headers, where the app's CORS layer sits.
        await response(scope, receive, _vary_origin(send) if self.cors else send)


def _ordinary(scope: Scope) -> tuple[str, str | None, int] | None:
    """``(token, key, body length)`` of an ordinary pledge's headers, else None."""
    authorization = content_type = length = key = None
    for name, value in scope["headers"]:
        if name in _PASS_ON:
            return None
        if name == b"authorization":
            if authorization is not None:
                return None
            authorization = value
        elif name == b"content-type":
            if content_type is not None:
                return None
            content_type = value
        elif name == b"content-length":
            if length is not None:
                return None
            length = value
        elif name == b"idempotency-key":
            if key is not None:
                return None
            key = value
    if content_type is None or content_type.lower() != b"application/json":
        return None
    if length is None or not length.isdigit() or not 0 < int(length) <= MAX_BODY:
        return None
    if authorization is None:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    text_key = None
    if key is not None:
        text_key = key.decode("latin-1")
        if not 1 <= len(text_key) <= MAX_KEY:
            return None
    return token, text_key, int(length)


def _amount(body: bytes) -> int | None:
    """The amount of a body that is exactly ``{"amount": <integer>}`` in range."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or len(data) != 1:
        return None
    amount = data.get("amount")
    if type(amount) is not int or not 1 <= amount < INT64_END:
        return None
    return amount


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for whoever answers next: the body already read, then the rest."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


def _vary_origin(send: Send) -> Send:
    """What Starlette's CORS layer adds to a response to a request without ``Origin``."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            for n, (name, value) in enumerate(headers):
                if name == b"vary":
                    headers[n] = (name, value + b", Origin")
                    break
            else:
                headers.append((b"vary", b"Origin"))
            message = {**message, "headers": headers}
        await send(message)

    return sending
