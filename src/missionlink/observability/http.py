"""Request metrics and one structured log line per request."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from missionlink.observability.metrics import REQUESTS

log = structlog.get_logger("missionlink.http")


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
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            REQUESTS.labels(method=scope["method"], route=template, status=str(status)).observe(
                elapsed
            )
            if template not in ("/healthz", "/readyz", "/metrics"):
                log.info("request", method=scope["method"], route=template, status=status,
                         ms=round(elapsed * 1000, 2))
