"""The listener of ``missionlink worker`` on ``METRICS_PORT``: ``/metrics`` for the
scraper, ``/healthz`` and ``/readyz`` for the orchestrator's probes.

- ``GET /healthz``: 200 while the worker's loop has completed a pass within
  ``WORKER_LIVENESS_SECONDS`` (60 s), 503 before its first pass and once it has not
  completed one for that long (stuck on a lock, a hung connection, a blocked loop).
- ``GET /readyz``: 200 when both databases and the broker answer, 503 naming the one
  that does not (the same checks as the API's ``/readyz``).
- ``GET /metrics``: this process's registry, in the format the scraper asks for.

A small HTTP/1.1 server on the worker's own event loop (one request per connection, no
new dependency): a loop that stops turning stops answering, which is what a liveness
probe should see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from sqlalchemy import text

log = structlog.get_logger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
READ_TIMEOUT = 5.0
CHECK_TIMEOUT = 3.0
MAX_HEADER_BYTES = 16 * 1024

Readiness = Callable[[], Awaitable[dict[str, str]]]


class Heartbeat:
    """When the worker's loop last completed a pass (monotonic clock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last: float | None = None

    def beat(self) -> None:
        self.last = self._clock()

    def age(self) -> float | None:
        """Seconds since the last completed pass; None before the first."""
        return None if self.last is None else self._clock() - self.last


def container_readiness(container: Any) -> Readiness:
    """Both databases and the broker of a ``bootstrap.Container``, each bounded in time."""

    async def check() -> dict[str, str]:
        checks: dict[str, str] = {}
        for name, db in (("identity_db", container.identity_db),
                         ("core_db", container.core_db)):
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    async with db.connect_readonly() as conn:
                        await conn.execute(text("SELECT 1"))
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"error: {type(exc).__name__}"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                ok = bool(await container.broker.ping())
        except Exception:
            ok = False
        checks["broker"] = "ok" if ok else "error"
        return checks

    return check


class HealthServer:
    def __init__(self, heartbeat: Heartbeat, readiness: Readiness, *,
                 liveness_seconds: float) -> None:
        self.heartbeat = heartbeat
        self.readiness = readiness
        self.liveness_seconds = liveness_seconds
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0: any free one); the port bound."""
        self._server = await asyncio.start_server(self._serve, host, port,
                                                  limit=MAX_HEADER_BYTES)
        bound = int(self._server.sockets[0].getsockname()[1])
        log.info("worker.health_listening", port=bound)
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            status, content_type, body = await self.answer(
                method, target.split("?", 1)[0], headers.get("accept", ""))
            out = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}",
                   f"Content-Length: {len(body)}", "Connection: close", "", ""]
            writer.write("\r\n".join(out).encode("latin-1"))
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (TimeoutError, ValueError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that sent no request or left: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def answer(self, method: str, path: str, accept: str) -> tuple[str, str, bytes]:
        """(status line, content type, body) for one request."""
        if method not in ("GET", "HEAD"):
            return _json("405 Method Not Allowed", {"error": "method not allowed"})
        if path == METRICS_PATH:
            encoder, content_type = choose_encoder(accept)
            return "200 OK", content_type, encoder(REGISTRY)
        if path == HEALTH_PATH:
            age = self.heartbeat.age()
            if age is None:
                return _json("503 Service Unavailable",
                             {"status": "starting", "last_pass_seconds_ago": None})
            alive = age <= self.liveness_seconds
            return _json("200 OK" if alive else "503 Service Unavailable",
                         {"status": "ok" if alive else "stalled",
                          "last_pass_seconds_ago": round(age, 3)})
        if path == READY_PATH:
            checks = await self.readiness()
            ready = all(v == "ok" for v in checks.values())
            return _json("200 OK" if ready else "503 Service Unavailable",
                         {"ready": ready, "checks": checks})
        return _json("404 Not Found", {"error": "not found"})


def _json(status: str, body: dict[str, Any]) -> tuple[str, str, bytes]:
    return status, "application/json", json.dumps(body).encode()
