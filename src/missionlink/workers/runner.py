"""The worker: expires overdue missions, relays the outbox to handlers, sends emails."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import dead_letters, outbox, processed_events
from missionlink.adapters.db.sql import dialect_of
from missionlink.bootstrap import CALIBRATE_SECONDS, Container, build, calibrate_clock
from missionlink.config import Env, Settings
from missionlink.domain import events
from missionlink.observability import metrics, tracing
from missionlink.observability.logging import configure
from missionlink.services import idempotency, missions
from missionlink.services.notices import WAKE_CHANNEL
from missionlink.workers import emails
from missionlink.workers.handlers import HANDLERS
from missionlink.workers.health import HealthServer, Heartbeat, container_readiness
from missionlink.workers.observe import Observer, tally

log = structlog.get_logger(__name__)


#: Handled events logged at INFO (settlement and its result); the rest at DEBUG.
_LOGGED_TOPICS = frozenset({events.MISSION_ENDED, events.MISSION_SETTLED})


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(600, 2 ** min(attempts, 10)))


class Worker:
    def __init__(self, container: Container, *, idle_seconds: float = 0.5) -> None:
        self.c = container
        self.idle_seconds = idle_seconds
        self._stopping = asyncio.Event()
        self._last_purge = 0.0
        self._calibrated = float("-inf")
        self._observe = Observer(container)

    def stop(self) -> None:
        """Stop after the event being handled: the rest of a claimed batch is released."""
        self._stopping.set()

    async def _calibrate(self) -> None:
        """Set the clock by the database server's, every ``CALIBRATE_SECONDS``."""
        if time.monotonic() - self._calibrated >= CALIBRATE_SECONDS:
            self._calibrated = time.monotonic()
            await calibrate_clock(self.c)

    async def run_once(self) -> int:
        """One pass over every duty; returns how much work it did."""
        done = 0
        await self._calibrate()
        now = self.c.clock.now()
        async with self.c.core_db.begin() as conn:
            done += await missions.expire_due(conn, now)
        done += await self.process_outbox()
        if self._stopping.is_set():
            return done
        done += await emails.send_batch(self.c)
        if time.monotonic() - self._last_purge > 3600:
            self._last_purge = time.monotonic()
            async with self.c.core_db.begin() as conn:
                await idempotency.purge_expired(conn, now, self.c.settings.idempotency_ttl_seconds)
        await self._observe()
        return done

    async def run_until_idle(self, max_passes: int = 100) -> None:
        for _ in range(max_passes):
            if await self.run_once() == 0:
                return
        raise RuntimeError("worker did not become idle")

    async def run_forever(self) -> None:
        log.info("worker.started")
        async with self.c.broker.subscribe(WAKE_CHANNEL) as wake:
            while not self._stopping.is_set():
                try:
                    busy = await self.run_once()
                except Exception:
                    log.exception("worker.pass_failed")
                    busy = 0
                    await asyncio.sleep(1)
                if busy:
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.idle_seconds):
                        stop = asyncio.ensure_future(self._stopping.wait())
                        got = asyncio.ensure_future(wake.get())
                        try:
                            await asyncio.wait({stop, got}, return_when=asyncio.FIRST_COMPLETED)
                        finally:
                            stop.cancel()
                            got.cancel()
        log.info("worker.stopped")

    async def process_outbox(self) -> int:
        now = self.c.clock.now()
        limit = self.c.settings.worker_batch_size
        async with self.c.core_db.begin() as conn:
            stmt = (
                select(outbox)
                .where(outbox.c.processed_at.is_(None), outbox.c.available_at <= now)
                .order_by(outbox.c.id)
                .limit(limit)
            )
            events = list(await conn.execute(dialect_of(conn).claim(stmt)))
            handled = 0
            succeeded: list[tuple[str, dict[str, Any]]] = []
            for event in events:
                if self._stopping.is_set():
                    # Shutting down: what is handled commits, the rest of the batch is
                    # released with it (still unprocessed) for the next worker to claim.
                    break
                if await self._handle(conn, event):
                    succeeded.append((event.topic, dict(event.payload)))
                handled += 1
        await tally(self.c, succeeded)  # committed now: count what it did
        return handled

    async def _handle(self, conn: AsyncConnection, event: Any) -> bool:
        """Run the event's handlers that have not run yet; False when one failed.

        Logged (and traced) under the id of the request that wrote the event, so what its
        handlers log, and the events they write, name that request."""
        with structlog.contextvars.bound_contextvars(
            request_id=event.request_id, event_id=event.id, topic=event.topic
        ), tracing.span(f"outbox {event.topic}", **{"missionlink.event_id": event.id,
                                                    "missionlink.request_id": event.request_id}):
            return await self._handle_bound(conn, event)

    async def _handle_bound(self, conn: AsyncConnection, event: Any) -> bool:
        now = self.c.clock.now()
        try:
            async with conn.begin_nested():
                done = set(
                    (
                        await conn.execute(
                            select(processed_events.c.handler).where(
                                processed_events.c.event_id == event.id
                            )
                        )
                    ).scalars()
                )
                for name, handler in HANDLERS.get(event.topic, []):
                    if name in done:
                        continue
                    await handler(conn, dict(event.payload), self.c)
                    await conn.execute(
                        insert(processed_events).values(
                            event_id=event.id, handler=name, processed_at=now
                        )
                    )
                await conn.execute(
                    update(outbox).where(outbox.c.id == event.id).values(processed_at=now)
                )
            metrics.EVENTS.labels(topic=event.topic, outcome="ok").inc()
            (log.info if event.topic in _LOGGED_TOPICS else log.debug)(
                "outbox.handled", mission_id=event.payload.get("mission_id"))
            return True
        except Exception as exc:
            attempts = event.attempts + 1
            error = f"{type(exc).__name__}: {exc}"[:4000]
            log.warning("outbox.handler_failed", error=error)
            values: dict[str, Any] = {"attempts": attempts, "last_error": error,
                                      "available_at": now + backoff(attempts)}
            if attempts >= self.c.settings.worker_max_attempts:
                values["processed_at"] = now
                await conn.execute(delete(dead_letters).where(dead_letters.c.event_id == event.id))
                await conn.execute(
                    insert(dead_letters).values(
                        event_id=event.id, topic=event.topic, payload=event.payload,
                        error=error, attempts=attempts, failed_at=now,
                    )
                )
                metrics.EVENTS.labels(topic=event.topic, outcome="dead").inc()
            else:
                metrics.EVENTS.labels(topic=event.topic, outcome="retry").inc()
            await conn.execute(update(outbox).where(outbox.c.id == event.id).values(**values))
            return False


async def run_standalone(settings: Settings) -> None:
    """``missionlink worker``: the worker alone; on ``METRICS_PORT`` it answers /metrics,
    /healthz (a pass completed within WORKER_LIVENESS_SECONDS) and /readyz (databases and
    broker reachable), see workers/health.py."""
    import signal

    configure(json_logs=settings.env != Env.dev)
    container = build(settings)
    heartbeat = Heartbeat()

    class WatchedWorker(Worker):
        async def run_once(self) -> int:
            done = await super().run_once()
            heartbeat.beat()  # a pass completed: the loop is alive
            return done

    worker = WatchedWorker(container)
    listener = HealthServer(heartbeat, container_readiness(container),
                            liveness_seconds=settings.worker_liveness_seconds)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    try:
        if settings.metrics_port:
            await listener.start("0.0.0.0", settings.metrics_port)  # noqa: S104 (the pod's port)
        await worker.run_forever()
    finally:
        await listener.close()
        await container.close()
