"""Brokers: wake workers and fan events out to every API process.

``InProcessBroker`` is the embedded default (one process); ``RedisBroker`` spans processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol


class Broker(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

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

    async def _listen(self, channel: str) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(f"missionlink:{channel}")
        try:
            async for item in pubsub.listen():
                if item.get("type") == "message":
                    await self._local.publish(channel, json.loads(item["data"]))
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        if channel not in self._listeners or self._listeners[channel].done():
            self._listeners[channel] = asyncio.create_task(self._listen(channel))
            await asyncio.sleep(0)
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
