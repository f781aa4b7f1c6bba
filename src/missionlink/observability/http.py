"""Request ids, request metrics and a structured log line per request (one in
``LOG_CACHED_READS_EVERY`` for cached public reads answered by the front layer)."""

from __future__ import annotations

import os
import re
import time

import structlog
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from missionlink.observability.metrics import REQUESTS, UNHANDLED_ERRORS

log = structlog.get_logger("missionlink.http")

REQUEST_ID_HEADER = "X-Request-Id"
#: Where the request's id is kept in the ASGI scope, for handlers outside the middleware.
REQUEST_ID_SCOPE_KEY = "missionlink.request_id"
#: An incoming id is echoed only when it is short and made of characters that cannot
#: split a log line or a header; anything else is replaced by a fresh id.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/missions/{mission_id}``), never the raw
    path: metric labels stay bounded whatever paths clients make up."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) and template else "unmatched"


def request_id_of(scope: Scope) -> str:
    """The request's id: the client's ``X-Request-Id`` when it is safe, else a new one.

    Decided once per request and kept in the scope, so every middleware, handler and log
    line of the request agrees on it.
    """
    known = scope.get(REQUEST_ID_SCOPE_KEY)
    if isinstance(known, str):
        return known
    chosen = None
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _SAFE_REQUEST_ID.fullmatch(text):
                chosen = text
            break
    # 32 random hex digits, as ``uuid4().hex`` gave, at a fifth of its cost per request.
    chosen = chosen or os.urandom(16).hex()
    scope[REQUEST_ID_SCOPE_KEY] = chosen
    return chosen


def report_unhandled(scope: Scope, exc: BaseException, template: str | None = None) -> None:
    """Count and log (with the stack) an exception that no handler turned into a response;
    ``template`` for a request answered outside the router."""
    template = template or route_template(scope)
    UNHANDLED_ERRORS.labels(route=template).inc()
    log.error("unhandled exception", method=scope.get("method"), route=template,
              request_id=request_id_of(scope), exc_info=exc)


class RequestIdMiddleware:
    """Gives each request an id, binds it to every log line and returns it as
    ``X-Request-Id`` on the response, so a client's report can be matched to the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower()
                           != b"x-request-id"]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class RequestMetricsMiddleware:
    """Latency per route template (not per raw path, to keep label cardinality bounded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            record_request(scope["method"], route_template(scope), status, started)


#: A sampled kind of request is still logged every time it takes at least this long.
SLOW_SECONDS = 0.1
_UNLOGGED = frozenset({"/healthz", "/readyz", "/metrics"})
_observers: dict[tuple[str, str, int], Histogram] = {}


def _observe(method: str, template: str, status: int, elapsed: float) -> None:
    # The labelled child is looked up once per (method, route, status), not per request.
    key = (method, template, status)
    child = _observers.get(key)
    if child is None:
        child = _observers[key] = REQUESTS.labels(method=method, route=template,
                                                  status=str(status))
    child.observe(elapsed)


def record_request(method: str, template: str, status: int, started: float,
                   **context: str) -> None:
    """Observe one answered request (``started`` from ``time.perf_counter``) and log it;
    ``context`` adds what the log line would otherwise take from bound context."""
    elapsed = time.perf_counter() - started
    _observe(method, template, status, elapsed)
    if template not in _UNLOGGED:
        log.info("request", method=method, route=template, status=status,
                 ms=round(elapsed * 1000, 2), **context)


class SampledRequestLog:
    """Counts every request of a kind that comes in floods of alike answers (a cached public
    read) and logs one line for ``every`` of them.

    A logged line's ``count`` is how many requests it stands for (itself and the unlogged
    ones since the previous line), so the lines still add up to the traffic. A request
    that is slow (``SLOW_SECONDS``) or not a success is logged at once, whatever the turn.
    ``every=1`` logs each one, as :func:`record_request` does.
    """

    def __init__(self, every: int) -> None:
        self.every = max(1, every)
        self._unlogged = 0

    def record(self, method: str, template: str, status: int, started: float,
               request_id: str) -> None:
        elapsed = time.perf_counter() - started
        _observe(method, template, status, elapsed)
        self._unlogged += 1
        if self._unlogged < self.every and elapsed < SLOW_SECONDS and status < 400:
            return
        count, self._unlogged = self._unlogged, 0
        log.info("request", method=method, route=template, status=status,
                 ms=round(elapsed * 1000, 2), request_id=request_id, count=count)
