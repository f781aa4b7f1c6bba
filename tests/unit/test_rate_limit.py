from __future__ import annotations

import asyncio
import uuid

import pytest

from missionlink.adapters.security.rate_limit import MemoryRateLimiter, RedisRateLimiter
from missionlink.domain.errors import RateLimited
from tests.conftest import redis_test_url


async def test_limit_then_retry_after_then_window_slides() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(monotonic=lambda: now[0])
    for _ in range(3):
        await limiter.hit("k", limit=3, window=60, what="things")
    with pytest.raises(RateLimited) as err:
        await limiter.hit("k", limit=3, window=60, what="things")
    assert err.value.retry_after == 60
    now[0] = 61
    await limiter.hit("k", limit=3, window=60, what="things")
    await limiter.hit("other", limit=0, window=60, what="things")  # 0 turns the rule off


async def test_redis_limiter_shares_one_budget_between_replicas() -> None:
    url = redis_test_url("the shared rate-limit test")
    now = [1_000_000.0]
    prefix = f"missionlink-test:{uuid.uuid4().hex}:"
    a = RedisRateLimiter(url, prefix=prefix, clock=lambda: now[0])
    b = RedisRateLimiter(url, prefix=prefix, clock=lambda: now[0])
    try:
        await a.hit("login", limit=3, window=60, what="tries")
        await b.hit("login", limit=3, window=60, what="tries")
        await a.hit("login", limit=3, window=60, what="tries")
        with pytest.raises(RateLimited) as err:
            await b.hit("login", limit=3, window=60, what="tries")
        assert err.value.retry_after == 60
        assert await a.retry_after("login", limit=3, window=60) == 60
        now[0] += 61
        assert await b.retry_after("login", limit=3, window=60) is None
        await a.record("fails", window=60)
        await a.reset("fails")
        assert await b.retry_after("fails", limit=1, window=60) is None
    finally:
        await a.close()
        await b.close()


async def test_pace_doubles_the_wait_after_the_threshold_up_to_the_cap() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(monotonic=lambda: now[0])
    waits = []
    for _ in range(6):
        wait = await limiter.pace("k", after=2, window=600, base=1, cap=5)
        waits.append(wait)
        if wait is not None:
            now[0] += wait
            assert await limiter.pace("k", after=2, window=600, base=1, cap=5) is None
    assert waits == [None, None, 1, 2, 4, 5]
    assert await limiter.count("k", window=600) == 6
    assert await limiter.pace("off", after=0, window=600, base=1, cap=5) is None


async def test_redis_pace_is_shared_between_replicas() -> None:
    url = redis_test_url("the shared progressive-delay test")
    now = [1_000_000.0]
    prefix = f"missionlink-test:{uuid.uuid4().hex}:"
    a = RedisRateLimiter(url, prefix=prefix, clock=lambda: now[0])
    b = RedisRateLimiter(url, prefix=prefix, clock=lambda: now[0])
    try:
        assert await a.pace("k", after=1, window=600, base=2, cap=3) is None
        assert await b.pace("k", after=1, window=600, base=2, cap=3) == 2
        now[0] += 2
        assert await b.pace("k", after=1, window=600, base=2, cap=3) is None
        assert await a.pace("k", after=1, window=600, base=2, cap=3) == 3  # capped, not 4
        assert await a.count("k", window=600) == await b.count("k", window=600) == 2
    finally:
        await a.close()
        await b.close()


async def test_redis_hits_of_one_turn_share_a_round_trip_and_keep_the_budget() -> None:
    url = redis_test_url("the batched rate-limit test")
    prefix = f"missionlink-test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter(url, prefix=prefix, clock=lambda: 1_000_000.0)
    sent: list[int] = []
    pipeline = limiter._redis.pipeline

    def counting_pipeline(*args: object, **kwargs: object) -> object:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        async def counted(*a: object, **kw: object) -> object:
            sent.append(len(pipe.command_stack))
            return await execute(*a, **kw)

        pipe.execute = counted
        return pipe

    limiter._redis.pipeline = counting_pipeline
    try:
        # A server that has never seen the script (or lost it): loaded, then run once.
        limiter._hit.sha = "0" * 40
        results = await asyncio.gather(
            *(limiter.hit("pledge:7", limit=3, window=60, what="pledges") for _ in range(5)),
            limiter.hit("pledge:8", limit=3, window=60, what="pledges"),
            return_exceptions=True)
        refused = [r for r in results if isinstance(r, RateLimited)]
        assert results[:3] == [None, None, None] and results[5] is None
        assert len(refused) == 2 and all(r.retry_after == 60 for r in refused)
        assert sent == [6, 6]  # one pipeline, sent again after NOSCRIPT
        assert await limiter.retry_after("pledge:7", limit=3, window=60) == 60
        assert await limiter.retry_after("pledge:8", limit=2, window=60) is None
        sent.clear()
        await limiter.hit("pledge:9", limit=3, window=60, what="pledges")
        assert sent == [1]
    finally:
        await limiter.close()
