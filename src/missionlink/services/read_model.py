"""The public read model: what a spike of viewers reads, kept in memory per API replica.

A hyped mission is read thousands of times a second and changes a few times a second, so
each replica keeps the encoded answer of the public reads (mission, missions of a channel,
backers, prediction pools, and the web pages made of them) bounded in entries and in body
bytes, and:

- **nothing stale lives longer than the TTL** (at most one second, ``READ_CACHE_TTL_SECONDS``):
  it bounds how late a change made elsewhere can show if its invalidation is lost. Every
  entry lives one TTL from its load, so entries are kept in the order they were stored,
  which is the order they expire in: an expired entry is never served, and each store
  first drops the expired ones at the front. The bound is then on what was loaded
  within one TTL (10,000 distinct reads a second fill the default), not on what was ever
  read, and a full bound evicts the entry closest to its end;
- **a write shows at once to its writer**: a state-changing request drops the keys it
  touched on its own replica before its response goes out (``api.effects``), then tells the
  other replicas through the broker (``INVALIDATION_CHANNEL``); the worker does the same for
  what it changes (settlement, expiry, every event it broadcasts);
- **time does not stand still in the cache**: a value that the clock alone will change (a
  mission turns ``expired`` at its deadline) carries the moment it stops being true and is
  reloaded from then on;
- **concurrent misses make one query** (single flight), and a load that an invalidation
  overtook is handed to the readers already waiting but never stored, so no one who asks
  after the write gets the older answer.

Only shared data is cached: anything that depends on the caller (``my_bet``) is read from
the database, never from an entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from missionlink.domain.clock import Clock
from missionlink.observability.metrics import READ_CACHE_BYTES, READ_CACHE_ENTRIES

log = logging.getLogger(__name__)

#: Broker topic on which replicas tell each other which tags changed.
INVALIDATION_CHANNEL = "read-model"
#: Tags every list of missions carries, so a new mission anywhere drops them.
MISSIONS_TAG = "missions"
#: Tag of every streamer directory page: any channel's change drops them all.
DIRECTORY_TAG = "streamers"


def mission_tag(mission_id: int) -> str:
    return f"mission:{mission_id}"


def channel_tag(streamer_id: int) -> str:
    return f"channel:{streamer_id}"


def post_tag(post_id: int) -> str:
    """A fan board post: its page, and every page that lists it (with its comment count)."""
    return f"post:{post_id}"


def encode(value: Any) -> bytes:
    return orjson.dumps(value)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a loader read: the value (``bytes`` when already encoded, as a rendered web
    page is; anything else is encoded as JSON), the tags a write must name to drop it, and
    when the clock alone changes it (``None``: only a write does)."""

    value: Any
    tags: frozenset[str]
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    etag: str
    #: A tuple of interned strings: entries of one mission or channel share them, and a
    #: tuple is a quarter of a frozenset's size (10,000 entries are held at once).
    tags: tuple[str, ...]
    fresh_until: float  # monotonic seconds
    valid_until: datetime | None


def entry_of(loaded: Loaded, fresh_until: float) -> Entry:
    # orjson hands back its whole output buffer (4 KiB for a 500-byte mission, up to twice
    # the length of a long page); kept for as long as the entry lives, that is most of the
    # read model's memory, so the body is copied at its length.
    value = loaded.value
    body = value if isinstance(value, bytes) else memoryview(encode(value)).tobytes()
    etag = '"' + hashlib.blake2b(body, digest_size=10).hexdigest() + '"'
    tags = tuple(sys.intern(tag) for tag in loaded.tags)
    return Entry(body, etag, tags, fresh_until, loaded.valid_until)


class ReadCache:
    """Encoded public reads, in the order they expire, bounded in entries and in bytes,
    with tag invalidation and single flight."""

    def __init__(self, *, max_entries: int, ttl_seconds: float, clock: Clock,
                 max_bytes: int = 16 * 2**20,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        #: Bound on the bodies' bytes: entries differ a hundredfold in size (a mission, a
        #: page of a hundred missions), so a count alone does not bound the memory.
        self.max_bytes = max_bytes
        self._bytes = 0
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.monotonic = monotonic
        self.origin = uuid.uuid4().hex
        #: Database loads made so far (misses that were not coalesced).
        self.loads = 0
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._by_tag: dict[str, set[Hashable]] = {}
        self._inflight: dict[Hashable, asyncio.Future[Entry]] = {}
        #: Invalidations are numbered; ``_dropped_at[tag]`` is the last one naming ``tag``.
        #: A load keeps its result only if none of its tags was dropped after it began.
        #: Kept only while loads run: with none in flight, nothing could compare against it.
        self._seq = 0
        self._dropped_at: dict[str, int] = {}
        self._loading = 0
        self._listener: asyncio.Task[None] | None = None
        #: Set once this replica hears the others' invalidations.
        self.listening = asyncio.Event()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def _usable(self, entry: Entry) -> bool:
        if entry.fresh_until <= self.monotonic():
            return False
        return entry.valid_until is None or self.clock.now() < entry.valid_until

    def peek(self, key: Hashable) -> Entry | None:
        """The entry for ``key`` if one is stored and still usable; never loads."""
        entry = self._entries.get(key)
        if entry is None or not self._usable(entry):
            return None
        return entry

    async def get(self, key: Hashable, load: Callable[[], Awaitable[Loaded]]) -> Entry:
        """The entry for ``key``, loading it (once, however many ask at once) on a miss."""
        entry = self._entries.get(key)
        if entry is not None:
            if self._usable(entry):
                return entry
            self._drop(key)
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load))
            self._inflight[key] = pending
        # Shielded: one reader going away must not cancel the load the others wait for.
        return await asyncio.shield(pending)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[Loaded]]) -> Entry:
        began = self._seq
        self.loads += 1
        self._loading += 1
        try:
            loaded = await load()
        finally:
            self._loading -= 1
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]
        entry = entry_of(loaded, self.monotonic() + self.ttl_seconds)
        overtaken = any(self._dropped_at.get(tag, -1) > began for tag in loaded.tags)
        if not overtaken and self.enabled:
            self._store(key, entry)
        return entry

    def _store(self, key: Hashable, entry: Entry) -> None:
        self._drop(key)
        self._drop_expired()
        if len(entry.body) > self.max_bytes:
            return
        self._entries[key] = entry
        self._bytes += len(entry.body)
        READ_CACHE_ENTRIES.inc()
        READ_CACHE_BYTES.inc(len(entry.body))
        for tag in entry.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop_expired(self) -> None:
        """Drop the entries at the front whose TTL has run out (stored with the same TTL,
        they expire in the order they were stored)."""
        now = self.monotonic()
        entries = self._entries
        while entries:
            key, entry = next(iter(entries.items()))
            if entry.fresh_until > now:
                return
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= len(entry.body)
        READ_CACHE_ENTRIES.dec()
        READ_CACHE_BYTES.dec(len(entry.body))
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    def invalidate(self, tags: Iterable[str]) -> None:
        """Drop every entry carrying one of ``tags``. Loads already under way are not
        joined by later readers (which tags a load reads is known only when it ends), and
        a load that reads one of ``tags`` keeps its result out of the cache: it may have
        read the database before the change."""
        tags = list(tags)
        if not tags:
            return
        self._seq += 1
        if self._loading:
            self._dropped_at.update(dict.fromkeys(tags, self._seq))
        else:
            self._dropped_at.clear()
        self._inflight.clear()
        for tag in tags:
            for key in list(self._by_tag.get(tag, ())):
                self._drop(key)

    # Across replicas ------------------------------------------------------------------

    async def announce(self, broker: Any, tags: Iterable[str]) -> None:
        """Drop ``tags`` here at once, then tell the other replicas."""
        tags = sorted(set(tags))
        if not tags:
            return
        self.invalidate(tags)
        await broker.publish(INVALIDATION_CHANNEL, {"tags": tags, "origin": self.origin})

    def listen(self, broker: Any) -> None:
        """Start hearing other replicas' invalidations (once; restarted if it ended)."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(broker),
                                                 name="missionlink-read-model")

    async def _listen(self, broker: Any) -> None:
        async with broker.subscribe(INVALIDATION_CHANNEL) as queue:
            self.listening.set()
            while True:
                message = await queue.get()
                if message.get("origin") == self.origin:
                    continue
                tags = message.get("tags")
                if isinstance(tags, list):
                    self.invalidate(str(t) for t in tags)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        for key in list(self._entries):
            self._drop(key)


# What a write touches ----------------------------------------------------------------

_MISSION_PATH = re.compile(r"^/api/v1/missions/(\d+)(?:/|$)")
_POST_PATH = re.compile(r"^/api/v1/posts/(\d+)(?:/|$)")


def tags_of_write(path: str | None, body: Any) -> set[str]:
    """The tags a committed write changes, from its path and its response body."""
    tags: set[str] = set()
    if path:
        m = _MISSION_PATH.match(path)
        if m:
            tags.add(mission_tag(int(m.group(1))))
        m = _POST_PATH.match(path)
        if m:
            tags.add(post_tag(int(m.group(1))))
    if isinstance(body, dict):
        tags |= tags_of_event(body)
        if path == "/api/v1/missions" and isinstance(body.get("id"), int):
            tags.add(mission_tag(body["id"]))
    return tags


def tags_of_event(payload: dict[str, Any]) -> set[str]:
    """The tags an outbox event (or a response shaped like one) changes."""
    tags: set[str] = set()
    mission_id = payload.get("mission_id")
    if isinstance(mission_id, int):
        tags.add(mission_tag(mission_id))
    streamer_id = payload.get("streamer_id")
    if isinstance(streamer_id, int):
        tags |= {channel_tag(streamer_id), MISSIONS_TAG}
    # A comment names its post (a comment's own path, /api/v1/comments/{id}, does not).
    post_id = payload.get("post_id")
    if isinstance(post_id, int):
        tags.add(post_tag(post_id))
    return tags


# When the clock changes a mission ------------------------------------------------------

def _at(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def next_status_change(mission: dict[str, Any]) -> datetime | None:
    """When ``status`` of this API mission stops being true without any write: a pending
    mission expires at its acceptance timeout or deadline, an accepted one at ``result_by``
    (its deadline plus the grace period for declaring the result)."""
    status = mission.get("status")
    deadline = _at(mission.get("deadline_at"))
    if status == "accepted":
        return _at(mission.get("result_by")) or deadline
    if status == "pending":
        moments = [t for t in (_at(mission.get("accept_by")), deadline) if t is not None]
        return min(moments) if moments else None
    return None


def earliest(moments: Iterable[datetime | None]) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None
