"""Sliding-window rate limits: in process memory (embedded default) or in Redis, shared
by every API replica (whenever ``BROKER_URL`` is a Redis URL)."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from missionlink.domain.errors import RateLimited


class RateLimiter(Protocol):
    async def retry_after(self, key: str, *, limit: int, window: float) -> int | None:
        """Seconds to wait when ``key`` has used up ``limit`` in ``window``, else None."""

    async def record(self, key: str, *, window: float) -> None: ...

    async def count(self, key: str, *, window: float) -> int:
        """Events of ``key`` within the last ``window`` seconds."""

    async def pace(
        self, key: str, *, after: int, window: float, base: float, cap: float
    ) -> int | None:
        """Progressive delay: once ``key`` holds ``after`` events in ``window``, the next
        may come only ``base * 2 ** (count - after)`` seconds (at most ``cap``) after the
        newest. Records the event and returns None when it may go ahead; else the seconds
        still to wait, recording nothing. ``after`` 0 disables the delay."""

    async def reset(self, key: str) -> None: ...

    async def hit(self, key: str, *, limit: int, window: float, what: str) -> None:
        """Count one event, or raise 429 with ``Retry-After`` when over the limit."""

    async def close(self) -> None: ...


#: The first part of a limiter key names its limit (``pledge:42``, ``login-fail:pair:…``).
_LIMIT_OF_PREFIX = {"signup": "signup", "login-fail": "login", "pledge": "pledge",
                    "post": "post"}


def _refuse(key: str, what: str, wait: int) -> RateLimited:
    return RateLimited(f"too many {what}; retry in {wait} s", retry_after=wait,
                       limit=_LIMIT_OF_PREFIX.get(key.partition(":")[0], "other"))


#: Beyond this many doublings every cap in use is reached; it keeps the power finite.
_MAX_DOUBLINGS = 40


def backoff_delay(count: int, *, after: int, base: float, cap: float) -> float:
    """The wait ``pace`` asks for after the newest of ``count`` events (0 below ``after``)."""
    if after <= 0 or count < after:
        return 0.0
    return float(min(cap, base * 2 ** min(count - after, _MAX_DOUBLINGS)))


class MemoryRateLimiter:
    """Counts events per key in this process; ``limit`` 0 disables the rule."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._events: dict[str, deque[float]] = {}
        self._now = monotonic

    def _window(self, key: str, window: float) -> deque[float]:
        now = self._now()
        q = self._events.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - window:
            q.popleft()
        if not q:
            del self._events[key]  # keep memory bounded: forget idle keys
        return q

    async def retry_after(self, key: str, *, limit: int, window: float) -> int | None:
        if limit <= 0:
            return None
        q = self._window(key, window)
        if len(q) < limit:
            return None
        return max(1, math.ceil(q[0] + window - self._now()))

    async def record(self, key: str, *, window: float) -> None:
        self._events.setdefault(key, deque()).append(self._now())

    async def count(self, key: str, *, window: float) -> int:
        return len(self._window(key, window))

    async def pace(
        self, key: str, *, after: int, window: float, base: float, cap: float
    ) -> int | None:
        # No await between the check and the append: concurrent attempts queue up here.
        q = self._window(key, window)
        delay = backoff_delay(len(q), after=after, base=base, cap=cap)
        if q and delay > 0:
            wait = q[-1] + delay - self._now()
            if wait > 0:
                return max(1, math.ceil(wait))
        self._events.setdefault(key, q).append(self._now())
        return None

    async def reset(self, key: str) -> None:
        self._events.pop(key, None)

    async def close(self) -> None:
        self._events.clear()

    async def hit(self, key: str, *, limit: int, window: float, what: str) -> None:
        wait = await self.retry_after(key, limit=limit, window=window)
        if wait is not None:
            raise _refuse(key, what, wait)
        if limit > 0:
            await self.record(key, window=window)


# Atomic check-and-count on a sorted set of event times (milliseconds).
_HIT = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, window)
return -1
"""


# Atomic progressive delay: the wait after the newest event doubles per event over ``after``.
_PACE = """
local key, now, window, after, base, cap, member = KEYS[1], tonumber(ARGV[1]),
  tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if after > 0 and count >= after then
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local delay = math.min(cap, base * 2 ^ math.min(count - after, 40))
  local wait = tonumber(newest[2]) + delay - now
  if wait > 0 then return math.ceil(wait) end
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, window)
return -1
"""


class RedisRateLimiter:
    """The same windows kept in Redis, so every replica counts against one budget.

    The hits of one turn of the event loop (the pledges a busy replica reads together) go
    to Redis as one pipeline of the same atomic script, one evaluation per hit in the
    order they came: one round trip for all of them instead of one each.
    """

    def __init__(self, url: str, *, prefix: str = "missionlink:rl:",
                 clock: Callable[[], float] = time.time) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.from_url(url)
        self._prefix = prefix
        self._clock = clock
        self._hit: Any = self._redis.register_script(_HIT)
        self._pace: Any = self._redis.register_script(_PACE)
        self._hits: list[tuple[tuple[Any, ...], asyncio.Future[int]]] = []

    def _ms(self) -> int:
        return int(self._clock() * 1000)

    async def retry_after(self, key: str, *, limit: int, window: float) -> int | None:
        if limit <= 0:
            return None
        k, now, win = self._prefix + key, self._ms(), int(window * 1000)
        await self._redis.zremrangebyscore(k, "-inf", now - win)
        if await self._redis.zcard(k) < limit:
            return None
        oldest = await self._redis.zrange(k, 0, 0, withscores=True)
        return max(1, math.ceil((oldest[0][1] + win - now) / 1000)) if oldest else None

    async def record(self, key: str, *, window: float) -> None:
        k, now = self._prefix + key, self._ms()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(k, {uuid.uuid4().hex: now})
            pipe.pexpire(k, int(window * 1000))
            await pipe.execute()

    async def count(self, key: str, *, window: float) -> int:
        k, now = self._prefix + key, self._ms()
        await self._redis.zremrangebyscore(k, "-inf", now - int(window * 1000))
        return int(await self._redis.zcard(k))

    async def pace(
        self, key: str, *, after: int, window: float, base: float, cap: float
    ) -> int | None:
        wait_ms = int(await self._pace(
            keys=[self._prefix + key],
            args=[self._ms(), int(window * 1000), max(0, after), int(base * 1000),
                  int(cap * 1000), uuid.uuid4().hex],
        ))
        return max(1, math.ceil(wait_ms / 1000)) if wait_ms >= 0 else None

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def hit(self, key: str, *, limit: int, window: float, what: str) -> None:
        if limit <= 0:
            return
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int] = loop.create_future()
        if not self._hits:
            loop.call_soon(self._send_hits)
        self._hits.append(((self._prefix + key, self._ms(), int(window * 1000), limit,
                            uuid.uuid4().hex), answer))
        wait_ms = await answer
        if wait_ms >= 0:
            raise _refuse(key, what, max(1, math.ceil(wait_ms / 1000)))

    def _send_hits(self) -> None:
        hits, self._hits = self._hits, []
        task = asyncio.ensure_future(self._evaluate(hits))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _evaluate(self, hits: list[tuple[tuple[Any, ...], asyncio.Future[int]]]
                        ) -> None:
        from redis.exceptions import NoScriptError

        try:
            results: list[Any] = [None] * len(hits)
            todo = list(range(len(hits)))
            for _ in range(2):  # once more after loading the script into a new server
                async with self._redis.pipeline(transaction=False) as pipe:
                    for n in todo:
                        pipe.evalsha(self._hit.sha, 1, *hits[n][0])
                    answers = await pipe.execute(raise_on_error=False)
                for n, value in zip(todo, answers, strict=True):
                    results[n] = value
                todo = [n for n in todo if isinstance(results[n], NoScriptError)]
                if not todo:
                    break
                # A script that was not there was not run: running it again counts once.
                self._hit.sha = await self._redis.script_load(_HIT)
            for (_, answer), value in zip(hits, results, strict=True):
                if answer.done():
                    continue
                if isinstance(value, BaseException):
                    answer.set_exception(value)
                else:
                    answer.set_result(int(value))
        except BaseException as exc:
            for _, answer in hits:
                if not answer.done():
                    answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    async def close(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(broker_url: str) -> RateLimiter:
    if broker_url.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(broker_url)
    return MemoryRateLimiter()
