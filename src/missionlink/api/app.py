"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from missionlink.api import docs, problems
from missionlink.api.fast_money import FastMoney
from missionlink.api.fast_path import FastPath
from missionlink.api.middleware import (
    BodyLimitMiddleware,
    LastResortMiddleware,
    SecurityHeadersMiddleware,
)
from missionlink.api.routers import (
    admin,
    auth,
    board,
    chargebacks,
    health,
    live,
    me,
    missions,
    overlay,
    payouts,
    refunds,
    statement,
    streamers,
    wallet,
)
from missionlink.api.routers import pages as web_pages
from missionlink.bootstrap import CALIBRATE_SECONDS, Container, calibrate_clock
from missionlink.config import Env
from missionlink.observability import tracing
from missionlink.observability.http import RequestIdMiddleware, RequestMetricsMiddleware

ROUTERS = [health.router, auth.router, me.router, wallet.router, statement.router,
           refunds.router, chargebacks.router, missions.router, streamers.router, board.router,
           overlay.router, live.router, admin.router, payouts.router]
ROUTERS.append(web_pages.router)  # HTML pages and /static, after every API route


class MissionLinkAPI(FastAPI):
    """FastAPI with the front layer (:class:`FastMoney`, then :class:`FastPath`) in front
    of its whole middleware stack (FastAPI's own error, telemetry and body-limit layers
    included), when ``front`` is set."""

    front: dict[str, Any] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.front is not None:
            stack = FastMoney(FastPath(stack, state=self.state, **self.front), **self.front)
        # Outermost: the front layer's requests get a span too (nothing when tracing is off).
        return tracing.wrap_asgi(stack)


async def _keep_clock_calibrated(container: Container) -> None:
    """On PostgreSQL, set this process's clock by the database server's now and then, so a
    pledge is judged against its deadline on the same time the worker expires it by."""
    while True:
        try:
            if await calibrate_clock(container) is None:
                return  # a clock of its own: the embedded default's, or a test's
        except Exception:  # the database is away: keep the last offset, try again later
            structlog.get_logger(__name__).warning("clock.calibration_failed", exc_info=True)
        await asyncio.sleep(CALIBRATE_SECONDS)


class BackgroundWorker(Protocol):
    """What the app runs in its lifespan: the outbox worker of the embedded default."""

    async def run_forever(self) -> None: ...

    def stop(self) -> None: ...


def create_app(container: Container, *, worker: BackgroundWorker | None = None,
               fast_path: bool = True) -> FastAPI:
    """Build the app; with a ``worker`` (wired by :mod:`missionlink.asgi`) the outbox worker
    runs inside this process.

    ``fast_path`` puts :mod:`missionlink.api.fast_money` and :mod:`missionlink.api.fast_path`
    in front (off only to compare).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task: asyncio.Task[None] | None = None
        if worker is not None:
            task = asyncio.create_task(worker.run_forever(), name="missionlink-worker")
        app.state.worker = worker
        clock_task = asyncio.create_task(_keep_clock_calibrated(container),
                                         name="missionlink-clock")
        try:
            yield
        finally:
            clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clock_task
            if worker is not None and task is not None:
                worker.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await container.close()

    app = MissionLinkAPI(
        title="MissionLink API",
        version="1.0.0",
        summary="Streamer mission donations: escrowed pledges, predictions, fan boards.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Traces come from observability/tracing.py alone (one server span per request,
        # made in front of the front layer too); FastAPI's own would add a second set, and
        # its check for a configured provider costs every request CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False,
                   "operation_spans": False, "auto_configure": False},
    )
    app.state.container = container
    problems.install(app)
    problems.install_openapi(app)
    docs.install(app)
    for router in ROUTERS:
        app.include_router(router, responses=problems.PROBLEM_RESPONSES)
    settings = container.settings
    # Listed innermost first: each add wraps everything added before it.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(LastResortMiddleware)
    # Outside the last resort, so a request it turned into a 500 is counted as one.
    app.add_middleware(RequestMetricsMiddleware)
    # Outside the last resort, so a browser may read the 500 and its headers too.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
            expose_headers=["Retry-After", "Location", "X-Request-Id"],
            allow_credentials=True,
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.env in (Env.staging, Env.prod),
                       auth_cookies=(auth.REFRESH_COOKIE,))
    app.add_middleware(RequestIdMiddleware)
    if fast_path:
        app.front = {"container": container, "hsts": settings.env in (Env.staging, Env.prod),
                     "cors": bool(settings.cors_origins), "auth_cookies": (auth.REFRESH_COOKIE,)}
    return app
