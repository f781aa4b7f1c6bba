"""Brokers: wake workers and fan events out to every API process.

``InProcessBroker`` is the embedded default (one process); ``RedisBroker`` spans processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

log = logging.getLogger(__name__)

RESUBSCRIBE_SECONDS = 1.0
#: How long a first subscriber waits for Redis to confirm before reading anyway.
SUBSCRIBE_TIMEOUT_SECONDS = 5.0


class Broker(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish each ``(channel, message)`` in order, in one exchange with the broker."""

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[
        asyncio.Queue[dict[str, Any]]
    ]: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class InProcessBroker:
    def __init__(self, max_queue: int = 1000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._max_queue = max_queue

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        for q in list(self._subscribers.get(channel, ())):
            if q.full():
                # A slow consumer loses its oldest message rather than stalling the rest.
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(message)

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        for channel, message in messages:
            await self.publish(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._max_queue)
        self._subscribers.setdefault(channel, set()).add(q)
        try:
            yield q
        finally:
            subs = self._subscribers.get(channel)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    del self._subscribers[channel]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._subscribers.clear()


class RedisBroker:
    """Redis pub/sub: one connection per process fans messages out to local queues."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self._local = InProcessBroker()
        self._listeners: dict[str, asyncio.Task[None]] = {}

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(f"missionlink:{channel}", json.dumps(message))

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """One pipelined round trip for all of ``messages`` (not a transaction)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, message in messages:
                pipe.publish(f"missionlink:{channel}", json.dumps(message))
            await pipe.execute()

    async def _listen(self, channel: str, ready: asyncio.Event) -> None:
        """Relay one Redis channel to the local queues, resubscribing after a lost link."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(f"missionlink:{channel}")
                ready.set()
                async for item in pubsub.listen():
                    if item.get("type") == "message":
                        await self._local.publish(channel, json.loads(item["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broker: lost the subscription to %s; resubscribing", channel)
                await asyncio.sleep(RESUBSCRIBE_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        if channel not in self._listeners or self._listeners[channel].done():
            ready = asyncio.Event()
            task = asyncio.create_task(self._listen(channel, ready))
            self._listeners[channel] = task
            # Redis drops messages published before the subscription is confirmed.
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait({task, waiter}, timeout=SUBSCRIBE_TIMEOUT_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        async with self._local.subscribe(channel) as q:
            yield q

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        for task in self._listeners.values():
            task.cancel()
        for task in self._listeners.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._listeners.clear()
        await self._redis.aclose()


def make_broker(url: str) -> Broker:
    if not url:
        return InProcessBroker()
    if url.startswith(("redis://", "rediss://")):
        return RedisBroker(url)
    raise ValueError("BROKER_URL must be empty (in-process) or a redis:// URL")
