"""The lean route for the money POSTs: ``/api/v1/missions/{mission_id}/pledges`` and
``/bets``.

A hyped mission's pledges arrive by the thousand a second, and the profile of a pledge
showed the HTTP stack (routing, dependency solving, request validation, seven middleware
layers) costing more CPU than the pledge itself. The ordinary request — a bearer token, a
JSON body that is exactly what the route's model accepts (``{"amount": <integer>}``,
``{"side": "success"|"failure", "points": <integer>}``) with the declared length, an
optional ``Idempotency-Key`` — is answered here, in front of the app, by calling the
route's own function with what FastAPI would have given it: the verified caller (the same
token check), the model, the request with its body, the container and the key. So the
rate limit, fingerprint, pledge port and ``effects`` are the route's, not a copy. The
answer has the same problem documents and is counted under the same route template; the
headers the app's layers would add (``Vary`` from CORS, the security headers,
``X-Request-Id``) are added here by the same rules and in the same order, without wrapping
``send`` in each layer.

Anything else goes to the app, body included, untouched: no or a malformed
``Authorization``, a token that does not verify, an ``Origin`` (CORS answers it), a
chunked or large body, another content type, a body that is not exactly the model's
fields, an id or key outside policy. Nothing has been counted or written when a request
is passed on.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from missionlink.adapters.security.tokens import AccessClaims
from missionlink.api.context import AppContext
from missionlink.api.deps import IDEMPOTENCY_KEY_MAX, bearer_token, verify_token
from missionlink.api.middleware import SecurityHeadersMiddleware, vary_on_origin
from missionlink.api.params import INT64_END, parse_id
from missionlink.api.problems import (
    UNAVAILABLE,
    domain_problem,
    internal_error,
    unavailable_problem,
)
from missionlink.api.routers import missions as routes
from missionlink.api.schemas.core import BetIn, PledgeIn
from missionlink.domain.errors import DomainError, NotAuthenticated
from missionlink.observability.http import (
    record_request,
    report_unhandled,
    request_id_of,
)

MISSIONS = "/api/v1/missions/"
#: A pledge with a 100-character Korean message and ``"anonymous": true`` is about 360
#: bytes; anything much longer is not an ordinary request.
MAX_BODY = 512
_PLEDGE_FIELDS = frozenset({"amount", "message", "anonymous"})
_PASS_ON = frozenset({b"origin", b"transfer-encoding"})


def _in_range(value: object) -> bool:
    return type(value) is int and 1 <= value < INT64_END


def _pledge_body(data: dict[str, Any]) -> BaseModel | None:
    if data.keys() == {"amount"}:
        if not _in_range(data["amount"]):
            return None
        return PledgeIn.model_construct(amount=data["amount"], message=None, anonymous=False)
    if "amount" not in data or not data.keys() <= _PLEDGE_FIELDS:
        return None
    try:  # with a message: the model's own checks, and the app answers what they refuse
        return PledgeIn.model_validate(data)
    except ValidationError:
        return None


def _bet_body(data: dict[str, Any]) -> BaseModel | None:
    if (data.keys() != {"side", "points"} or data["side"] not in ("success", "failure")
            or not _in_range(data["points"])):
        return None
    return BetIn.model_construct(side=data["side"], points=data["points"])


@dataclass(frozen=True, slots=True)
class MoneyRoute:
    template: str
    #: The route's model, built from a body already checked to be exactly what it
    #: accepts; None sends the request to the app.
    body: Callable[[dict[str, Any]], BaseModel | None]
    #: The route's own function, called with the arguments FastAPI would pass.
    endpoint: Callable[..., Awaitable[Response]]


ROUTES: dict[str, MoneyRoute] = {
    "/pledges": MoneyRoute("/api/v1/missions/{mission_id}/pledges", _pledge_body,
                           routes.pledge),
    "/bets": MoneyRoute("/api/v1/missions/{mission_id}/bets", _bet_body, routes.bet),
}


class FastMoney:
    """Pure ASGI in front of ``app`` (the front layer and the FastAPI app behind it)."""

    def __init__(self, app: ASGIApp, *, container: AppContext, hsts: bool, cors: bool,
                 auth_cookies: tuple[str, ...]) -> None:
        self.app = app
        self.container = container
        self.cors = cors
        # The app's own layers: their header rules, applied here in their order.
        self._security = SecurityHeadersMiddleware(app, hsts=hsts, auth_cookies=auth_cookies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(MISSIONS):
                raw_id, slash, tail = path[len(MISSIONS):].partition("/")
                route = ROUTES.get("/" + tail) if slash else None
                mission_id = parse_id(raw_id) if route is not None else None
                if route is not None and mission_id is not None:
                    await self._serve(scope, receive, send, route, mission_id)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, route: MoneyRoute,
                     mission_id: int) -> None:
        started = time.perf_counter()
        asked = _ordinary(scope)
        if asked is None:
            await self.app(scope, receive, send)
            return
        token, key, length = asked
        body = b""
        more = True
        while more and len(body) <= length:
            message = await receive()
            if message["type"] != "http.request":
                # Gone before its body was complete: the app notes it as it always does.
                await self.app(scope, _replaying(body, receive, more=True, then=message),
                               send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        replay = _replaying(body, receive, more=more)
        model = _model(route, body) if not more and len(body) == length else None
        claims: AccessClaims | None = None
        if model is not None:
            try:
                claims = await verify_token(self.container, token)
            except Exception:
                claims = None  # the app checks again and answers 401, 503 or 500 itself
        if claims is None or model is None:
            await self.app(scope, replay, send)
            return
        request_id = request_id_of(scope)
        status = 500
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                response = await self._run(scope, _replaying(body, receive, more=False),
                                           route, mission_id, model, claims, key)
            status = response.status_code
            await self._send(scope, send, response, request_id)
        finally:
            record_request("POST", route.template, status, started, request_id=request_id)

    async def _run(self, scope: Scope, receive: Receive, route: MoneyRoute, mission_id: int,
                   model: BaseModel, claims: AccessClaims, key: str | None) -> Response:
        """The route's function, with the app's exception handling."""
        try:
            return await route.endpoint(
                mission_id=mission_id, body=model, request=Request(scope, receive),
                user=claims, c=self.container, key=key)
        except DomainError as exc:
            return domain_problem(exc)
        except UNAVAILABLE as exc:
            return unavailable_problem(scope, exc, route.template)
        except Exception as exc:
            report_unhandled(scope, exc, route.template)
            return internal_error(request_id_of(scope))

    async def _send(self, scope: Scope, send: Send, response: Response,
                    request_id: str) -> None:
        """``response`` with the headers the app's layers add, in their order: Vary from
        CORS, then the security headers, then the request id."""
        headers = list(response.raw_headers)
        if self.cors:
            vary_on_origin(headers)
        headers = self._security.headers_for(scope, headers)
        headers = [item for item in headers if item[0] != b"x-request-id"]
        headers.append((b"x-request-id", request_id.encode("latin-1")))
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


def _model(route: MoneyRoute, body: bytes) -> BaseModel | None:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return route.body(data) if type(data) is dict else None


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
    try:
        token = bearer_token(authorization.decode("latin-1"))
    except NotAuthenticated:
        return None  # the app answers with its 401
    if token is None:
        return None
    text_key = None
    if key is not None:
        text_key = key.decode("latin-1")
        if not 1 <= len(text_key) <= IDEMPOTENCY_KEY_MAX:
            return None
    return token, text_key, int(length)


def _replaying(body: bytes, receive: Receive, *, more: bool,
               then: Message | None = None) -> Receive:
    """``receive`` for whoever answers next: the body read so far (and ``then``, the
    message that ended the reading), then the rest."""
    pending: list[Message] = [] if then is None else [then]
    pending.append({"type": "http.request", "body": body, "more_body": more})

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
