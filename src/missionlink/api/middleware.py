"""ASGI middleware of the response layer: the body limit (413), the last-resort 500 and the
security headers. All are pure ASGI so live event streams pass through unbuffered."""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from missionlink.api.problems import MEDIA_TYPE, TYPE_BASE, internal_error
from missionlink.observability.http import report_unhandled, request_id_of


class BodyTooLarge(HTTPException):
    """Raised while the body is read: FastAPI passes HTTP exceptions from the body read on
    to the exception handlers (any other exception there becomes a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request bodies are limited to {max_bytes} bytes")


class BodyLimitMiddleware:
    """413 as problem+json, whether the body declares its length or comes in chunks.

    FastAPI's own ``max_body_size`` answers a declared length with a plain-text 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {
                "type": TYPE_BASE + "payload-too-large",
                "title": "Request body too large",
                "status": 413,
                "detail": f"request bodies are limited to {self.max_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Read outside the exception handlers (by a middleware, say): answer here.
            if not started:
                await self._reject(send)


class LastResortMiddleware:
    """Any exception from below becomes a problem+json 500 with the request id, counted in
    ``missionlink_http_unhandled_errors_total`` and logged with its stack.

    The response's start is held back until its first body message, so a streaming
    response that fails before producing anything still gets a clean 500 instead of a
    200 with a cut-off body. Once body bytes have gone out, the status cannot change:
    the failure is logged and counted and the server ends the connection, which the
    client sees as an incomplete response.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        sent_start = False

        async def holding_send(message: Message) -> None:
            nonlocal held, sent_start
            if message["type"] == "http.response.start":
                held = message
                return
            if held is not None:
                start, held = held, None
                sent_start = True
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, holding_send)
        except ClientDisconnect:
            return  # nobody is left to answer, and it is no failure of ours
        except Exception as exc:
            report_unhandled(scope, exc)
            if not sent_start:
                await internal_error(request_id_of(scope))(scope, receive, send)
            return
        if held is not None:
            await send(held)


#: Applied to HTML that brings no policy of its own: nothing loads, nothing frames it.
DEFAULT_HTML_CSP = ("default-src 'none'; base-uri 'none'; form-action 'none'; "
                    "frame-ancestors 'none'")
HSTS = "max-age=31536000; includeSubDomains"
_HSTS = HSTS.encode("latin-1")
_DEFAULT_HTML_CSP = DEFAULT_HTML_CSP.encode("latin-1")
#: Money and identity live under these; their responses are never stored by any cache.
PRIVATE_PATHS = ("/api/v1/wallet", "/api/v1/auth", "/api/v1/me", "/api/v1/payments")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def carries_credentials(scope: Scope, auth_cookies: frozenset[str]) -> bool:
    """Whether the request carries an ``Authorization`` header or one of ``auth_cookies``."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return True
        if name == b"cookie" and auth_cookies & cookie_parser(value.decode("latin-1")).keys():
            return True
    return False


def public_security_headers(*, hsts: bool) -> list[tuple[bytes, bytes]]:
    """What :class:`SecurityHeadersMiddleware` adds to a response for an anonymous request
    outside the private paths that is not HTML and sets none of these itself, in its
    order: a layer that answers outside the middleware stack appends exactly these."""
    headers = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
    if hsts:
        headers.append((b"strict-transport-security", HSTS.encode("latin-1")))
    return headers


def vary_on_origin(headers: list[tuple[bytes, bytes]]) -> None:
    """Add ``Origin`` to ``Vary`` in place, as Starlette's CORS layer does for a request
    without one (for answers made in front of that layer)."""
    for n, (name, value) in enumerate(headers):
        if name == b"vary":
            headers[n] = (name, value + b", Origin")
            return
    headers.append((b"vary", b"Origin"))


class SecurityHeadersMiddleware:
    """The headers every response carries, in one place.

    - ``X-Content-Type-Options: nosniff`` and a ``Referrer-Policy`` (a route's own wins);
    - ``Cache-Control: no-store`` when the request carries credentials (an
      ``Authorization`` header or an auth cookie) or asks for money or identity routes;
    - a restrictive ``Content-Security-Policy`` with ``frame-ancestors 'none'`` on HTML
      that has no policy of its own (the pages and the OBS overlay bring theirs);
    - ``Strict-Transport-Security`` when ``hsts`` is on (``ENV`` staging or prod).
    """

    def __init__(self, app: ASGIApp, *, hsts: bool, auth_cookies: Iterable[str] = ()) -> None:
        self.app = app
        self.hsts = hsts
        self.auth_cookies = frozenset(auth_cookies)

    def _private(self, scope: Scope) -> bool:
        if any(_under(scope["path"], prefix) for prefix in PRIVATE_PATHS):
            return True
        return carries_credentials(scope, self.auth_cookies)

    def headers_for(self, scope: Scope,
                    given: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """What this layer makes of a response's headers (for a layer that answers in
        front of it)."""
        return self._headers(given, self._private(scope))

    def _headers(self, given: Iterable[tuple[bytes, bytes]],
                 private: bool) -> list[tuple[bytes, bytes]]:
        """``given`` (lower-case names, as ASGI has them) with this layer's headers."""
        headers = list(given)
        names = {name for name, _ in headers}
        if b"x-content-type-options" not in names:
            headers.append((b"x-content-type-options", b"nosniff"))
        if b"referrer-policy" not in names:
            headers.append((b"referrer-policy", b"no-referrer"))
        if private:
            if b"cache-control" in names:  # the first one becomes no-store, others go
                at = next(n for n, (name, _) in enumerate(headers) if name == b"cache-control")
                headers[at + 1:] = [h for h in headers[at + 1:] if h[0] != b"cache-control"]
                headers[at] = (b"cache-control", b"no-store")
            else:
                headers.append((b"cache-control", b"no-store"))
        if self.hsts and b"strict-transport-security" not in names:
            headers.append((b"strict-transport-security", _HSTS))
        if b"content-security-policy" not in names:
            for name, value in headers:
                if name == b"content-type":
                    if value.lower().startswith(b"text/html"):
                        headers.append((b"content-security-policy", _DEFAULT_HTML_CSP))
                        if b"x-frame-options" not in names:
                            headers.append((b"x-frame-options", b"DENY"))
                    break
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = self._private(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": self._headers(message.get("headers", ()),
                                                                private)}
            await send(message)

        await self.app(scope, receive, send_with_headers)
