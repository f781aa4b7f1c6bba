"""The Redis broker delivers what ``publish_many`` sends, in order, to every subscriber.

Needs ``MISSIONLINK_TEST_REDIS_URL``; under ``CI=true`` a missing URL fails the run.
"""

from __future__ import annotations

import asyncio
import uuid

from missionlink.adapters.broker.inprocess import RedisBroker
from tests.conftest import redis_test_url


async def test_publish_many_reaches_subscribers_of_each_channel_in_order() -> None:
    url = redis_test_url("the Redis broker test")
    first, second = f"t-{uuid.uuid4().hex[:8]}-a", f"t-{uuid.uuid4().hex[:8]}-b"
    publisher, listener = RedisBroker(url), RedisBroker(url)
    try:
        async with listener.subscribe(first) as one, listener.subscribe(second) as two:
            await asyncio.sleep(0.2)  # both subscriptions confirmed by Redis
            await publisher.publish_many([(first, {"n": 1}), (second, {"n": 2}),
                                          (first, {"n": 3})])
            async with asyncio.timeout(5):
                got_one = [await one.get(), await one.get()]
                got_two = [await two.get()]
        assert got_one == [{"n": 1}, {"n": 3}]
        assert got_two == [{"n": 2}]
    finally:
        await publisher.close()
        await listener.close()
