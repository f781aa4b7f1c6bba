"""Ended sessions: access tokens that must stop working before they expire.

Access tokens are checked without a database round trip, so ending a session (logout, or
a refresh token presented twice) has to reach every API process by other means. Each
process keeps the sessions ended within the last access-token lifetime in memory, hears
of new ones through the broker, and when it starts loads the recent ones: from a Redis
sorted set when ``BROKER_URL`` is Redis, otherwise from the identity database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from missionlink.adapters.broker.inprocess import Broker

log = logging.getLogger(__name__)

CHANNEL = "sessions:revoked"
#: How long the first authenticated request waits for the broker before going on without it.
SUBSCRIBE_TIMEOUT_SECONDS = 5.0
SWEEP_SECONDS = 60.0

Loader = Callable[[], Awaitable[Iterable[tuple[str, float]]]]


class RevocationList:
    """Session ids with the time (epoch seconds) until which their tokens are refused."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._until: dict[str, float] = {}
        self._clock = clock
        self._sweep_at = 0.0

    def add(self, session_id: str, until: float) -> None:
        now = self._clock()
        if until <= now:
            return
        self._until[session_id] = max(until, self._until.get(session_id, 0.0))
        if now >= self._sweep_at:
            # Tokens issued before ``until`` have expired by then: the entry has done its job.
            self._until = {k: v for k, v in self._until.items() if v > now}
            self._sweep_at = now + SWEEP_SECONDS

    def __contains__(self, session_id: object) -> bool:
        if not isinstance(session_id, str):
            return False
        until = self._until.get(session_id)
        return until is not None and until > self._clock()

    def __len__(self) -> int:
        return len(self._until)


class RevocationStore(Protocol):
    """Where a process that starts later finds the sessions ended before it started."""

    async def add(self, session_ids: list[str], until: float) -> None: ...

    async def recent(self) -> list[tuple[str, float]]: ...

    async def close(self) -> None: ...


class RedisRevocationStore:
    """A sorted set of session ids scored by the time their tokens stop mattering."""

    def __init__(self, url: str, *, key: str = "missionlink:sessions:revoked",
                 clock: Callable[[], float] = time.time) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.from_url(url)
        self._key = key
        self._clock = clock

    async def add(self, session_ids: list[str], until: float) -> None:
        if not session_ids:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self._key, "-inf", self._clock())
            pipe.zadd(self._key, dict.fromkeys(session_ids, until))
            # Every entry ends one token lifetime after it was added: the newest lasts longest.
            pipe.expireat(self._key, int(until) + 1)
            await pipe.execute()

    async def recent(self) -> list[tuple[str, float]]:
        rows = await self._redis.zrangebyscore(self._key, self._clock(), "+inf", withscores=True)
        return [(sid.decode() if isinstance(sid, bytes) else str(sid), float(score))
                for sid, score in rows]

    async def close(self) -> None:
        await self._redis.aclose()


def make_revocation_store(broker_url: str) -> RevocationStore | None:
    if broker_url.startswith(("redis://", "rediss://")):
        return RedisRevocationStore(broker_url)
    return None


class SessionRevocations:
    """Ends sessions in this process and tells every other one through the broker."""

    def __init__(
        self,
        revoked: RevocationList,
        broker: Broker,
        *,
        ttl_seconds: float,
        store: RevocationStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.revoked = revoked
        self._broker = broker
        self._store = store
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.started = False

    async def revoke(self, session_ids: Iterable[str]) -> None:
        """Refuse the sessions' access tokens here at once, and everywhere within moments."""
        ids = sorted(set(session_ids))
        if not ids:
            return
        # Every token of these sessions was issued before now, so expires within the TTL.
        until = self._clock() + self._ttl
        for sid in ids:
            self.revoked.add(sid, until)
        if self._store is not None:
            await self._store.add(ids, until)
        await self._broker.publish(CHANNEL, {"sessions": ids, "until": until})

    async def start(self, fallback: Loader) -> None:
        """Listen for revocations, then load the recent ones; once per process."""
        if self.started:
            return
        async with self._lock:
            if self.started:
                return
            if self._task is None or self._task.done():
                subscribed = asyncio.Event()
                self._task = asyncio.create_task(self._listen(subscribed), name="revocations")
                # Subscribed before loading, so nothing ended in between goes unheard.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                        await subscribed.wait()
            recent = await (self._store.recent() if self._store is not None else fallback())
            for sid, until in recent:
                self.revoked.add(sid, until)
            self.started = True

    async def _listen(self, subscribed: asyncio.Event) -> None:
        while True:
            try:
                async with self._broker.subscribe(CHANNEL) as queue:
                    subscribed.set()
                    while True:
                        self._apply(await queue.get())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("session revocations: broker subscription failed; retrying")
                await asyncio.sleep(1)

    def _apply(self, message: dict[str, Any]) -> None:
        sessions, until = message.get("sessions"), message.get("until")
        if not isinstance(sessions, list) or not isinstance(until, int | float):
            return
        for sid in sessions:
            if isinstance(sid, str):
                self.revoked.add(sid, float(until))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.started = False
        if self._store is not None:
            await self._store.close()
