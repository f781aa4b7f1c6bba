"""The read model keeps a load's result unless one of its own tags changed meanwhile."""

from __future__ import annotations

import asyncio

from missionlink.domain.clock import FrozenClock
from missionlink.services.read_model import Loaded, ReadCache


def _cache() -> ReadCache:
    return ReadCache(max_entries=100, ttl_seconds=1.0, clock=FrozenClock())


async def test_unrelated_invalidation_during_a_load_does_not_keep_it_out() -> None:
    cache = _cache()
    started, release = asyncio.Event(), asyncio.Event()

    async def load() -> Loaded:
        started.set()
        await release.wait()
        return Loaded({"id": 1}, frozenset({"mission:1"}))

    reader = asyncio.create_task(cache.get(("mission", 1), load))
    await started.wait()
    cache.invalidate(["mission:2"])  # another mission changed while this one loaded
    release.set()
    await reader
    assert cache.peek(("mission", 1)) is not None
    assert cache.loads == 1


async def test_invalidation_of_its_own_tag_during_a_load_keeps_it_out() -> None:
    cache = _cache()
    started, release = asyncio.Event(), asyncio.Event()

    async def load() -> Loaded:
        started.set()
        await release.wait()
        return Loaded({"id": 1}, frozenset({"mission:1"}))

    reader = asyncio.create_task(cache.get(("mission", 1), load))
    await started.wait()
    cache.invalidate(["mission:1"])  # it may have read the row before the change
    release.set()
    await reader
    assert cache.peek(("mission", 1)) is None


async def test_the_gauges_follow_what_is_held_up_to_the_bound_and_after_close() -> None:
    from missionlink.observability.metrics import READ_CACHE_BYTES, READ_CACHE_ENTRIES

    entries, body_bytes = READ_CACHE_ENTRIES._value.get(), READ_CACHE_BYTES._value.get()
    cache = ReadCache(max_entries=3, ttl_seconds=1.0, clock=FrozenClock())
    for n in range(5):
        async def load(n: int = n) -> Loaded:
            return Loaded({"id": n}, frozenset({f"mission:{n}"}))
        await cache.get(("mission", n), load)
    size = len(b'{"id":0}')
    assert len(cache) == 3
    assert READ_CACHE_ENTRIES._value.get() == entries + 3
    assert READ_CACHE_BYTES._value.get() == body_bytes + 3 * size
    cache.invalidate(["mission:4"])
    assert READ_CACHE_ENTRIES._value.get() == entries + 2
    await cache.close()
    assert READ_CACHE_ENTRIES._value.get() == entries
    assert READ_CACHE_BYTES._value.get() == body_bytes


async def test_big_bodies_are_bounded_by_bytes_as_well_as_by_count() -> None:
    cache = ReadCache(max_entries=100, max_bytes=2500, ttl_seconds=1.0, clock=FrozenClock())

    def page(n: int, size: int) -> Loaded:
        return Loaded({"n": n, "pad": "x" * size}, frozenset({"missions"}))

    for n in range(4):
        async def load(n: int = n) -> Loaded:
            return page(n, 1000)
        await cache.get(("missions", n), load)
    # Two pages of about 1 KB fit in 2.5 KB: the least recently used went first.
    assert len(cache) == 2 and cache.peek(("missions", 3)) is not None
    assert cache.peek(("missions", 1)) is None

    async def huge() -> Loaded:
        return page(9, 5000)
    entry = await cache.get(("missions", 9), huge)
    assert len(entry.body) > 2500 and cache.peek(("missions", 9)) is None  # served, not kept
    assert len(cache) == 2


async def test_an_entry_holds_no_more_memory_than_its_body() -> None:
    import tracemalloc

    cache = _cache()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(50):
            async def load(n: int = n) -> Loaded:
                return Loaded({"id": n, "title": "매운 라면 먹기"}, frozenset({f"mission:{n}"}))
            await cache.get(("mission", n), load)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Body, ETag, tags and the LRU's bookkeeping: well under the encoder's 4 KiB buffer.
    assert held / 50 < 1500


async def test_expired_entries_are_dropped_before_the_next_store_not_kept_to_the_bound() -> None:
    from missionlink.observability.metrics import READ_CACHE_BYTES

    now = [100.0]
    cache = ReadCache(max_entries=100, ttl_seconds=1.0, clock=FrozenClock(),
                      monotonic=lambda: now[0])
    body_bytes = READ_CACHE_BYTES._value.get()

    async def load(n: int) -> Loaded:
        return Loaded({"id": n}, frozenset({f"mission:{n}"}))

    for n in range(10):
        await cache.get(("mission", n), lambda n=n: load(n))
        now[0] += 0.05
    assert len(cache) == 10
    now[0] += 0.72  # the first five are past their TTL, the last five are not
    await cache.get(("mission", 99), lambda: load(99))
    assert len(cache) == 6
    assert [cache.peek(("mission", n)) is not None for n in (0, 4, 5, 9, 99)] == [
        False, False, True, True, True]
    assert READ_CACHE_BYTES._value.get() - body_bytes == sum(
        len(e.body) for e in cache._entries.values())
    await cache.close()


async def test_a_full_cache_drops_the_entry_closest_to_its_end_even_if_just_read() -> None:
    now = [0.0]
    cache = ReadCache(max_entries=3, ttl_seconds=1.0, clock=FrozenClock(),
                      monotonic=lambda: now[0])

    async def load(n: int) -> Loaded:
        return Loaded({"id": n}, frozenset({f"mission:{n}"}))

    for n in range(3):
        await cache.get(("mission", n), lambda n=n: load(n))
        now[0] += 0.1
    assert cache.peek(("mission", 0)) is not None  # a hit does not prolong an entry
    await cache.get(("mission", 3), lambda: load(3))
    assert [cache.peek(("mission", n)) is not None for n in range(4)] == [
        False, True, True, True]
    await cache.close()


def test_a_comment_edit_drops_its_posts_pages() -> None:
    from missionlink.services.read_model import post_tag, tags_of_write

    assert tags_of_write("/api/v1/comments/7", {"id": 7, "post_id": 3}) == {post_tag(3)}
    assert tags_of_write("/api/v1/posts/3/comments", {"id": 7, "post_id": 3}) == {post_tag(3)}
    assert tags_of_write("/api/v1/comments/7", {"id": 7}) == set()
