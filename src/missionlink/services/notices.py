"""What a committed effect tells the rest of the system, many effects to one message.

After an effect commits, this replica's read model drops what it changed at once (so the
writer's next read shows the write), the other replicas hear the same through the broker,
and the outbox worker is woken. Effects that commit together — the replies of one pledge
batch, a burst of requests — share one broker message of each kind: the first starts a
publication on the next turn of the event loop, the others add their tags to it and wait
for the same one. The caller's reply still waits until the broker has taken the message.

A broker that does not answer fails the publication for every effect waiting on it; the
caller (``api.effects``) keeps the committed effect a success.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from missionlink.services.read_model import INVALIDATION_CHANNEL, ReadCache

#: The channel the outbox worker listens on (``workers.runner``).
WAKE_CHANNEL = "outbox"
#: How long committed replies wait for a broker that takes messages but does not answer.
PUBLISH_SECONDS = 2.0
class CommitNotices:
    def __init__(self, broker: Any, read_cache: ReadCache) -> None:
        self.broker = broker
        self.read_cache = read_cache
        self._tags: set[str] = set()
        self._next: asyncio.Future[None] | None = None

    async def committed(self, tags: Iterable[str]) -> None:
        """Drop ``tags`` here now; tell the other replicas and wake the worker."""
        tags = set(tags)
        if tags:
            self.read_cache.invalidate(tags)
            self._tags |= tags
        if self._next is None:
            self._next = asyncio.ensure_future(self._publish())
        # Shielded: a caller that goes away does not cancel the others' publication.
        await asyncio.shield(self._next)

    async def _publish(self) -> None:
        await asyncio.sleep(0)  # the effects committed with this one add their tags first
        tags, self._tags, self._next = sorted(self._tags), set(), None
        messages: list[tuple[str, dict[str, Any]]] = []
        if tags:
            messages.append((INVALIDATION_CHANNEL, {"tags": tags,
                                                    "origin": self.read_cache.origin}))
        messages.append((WAKE_CHANNEL, {"wake": True}))
        async with asyncio.timeout(PUBLISH_SECONDS):
            # One exchange with the broker for both (a pipeline on Redis).
            await self.broker.publish_many(messages)
