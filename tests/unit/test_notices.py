"""What committed effects tell the other replicas and the worker (services/notices)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from missionlink.domain.clock import FrozenClock
from missionlink.services import notices
from missionlink.services.notices import WAKE_CHANNEL, CommitNotices
from missionlink.services.read_model import INVALIDATION_CHANNEL, Loaded, ReadCache


class Broker:
    def __init__(self, *, hang: bool = False) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.hang = hang
        self.exchanges = 0

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        if self.hang:
            await asyncio.Event().wait()
        self.sent.append((channel, message))

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        self.exchanges += 1
        for channel, message in messages:
            await self.publish(channel, message)


async def test_effects_committed_together_share_one_message_of_each_kind() -> None:
    cache = ReadCache(max_entries=100, ttl_seconds=1.0, clock=FrozenClock())

    async def load() -> Loaded:
        return Loaded({"id": 1}, frozenset({"mission:1"}))

    await cache.get(("mission", 1), load)
    broker = Broker()
    said = CommitNotices(broker, cache)

    await asyncio.gather(said.committed({"mission:1"}), said.committed({"mission:2"}),
                         said.committed(()), said.committed({"mission:1", "missions"}))

    assert cache.peek(("mission", 1)) is None  # dropped here before anything else
    assert broker.sent == [
        (INVALIDATION_CHANNEL, {"tags": ["mission:1", "mission:2", "missions"],
                                "origin": cache.origin}),
        (WAKE_CHANNEL, {"wake": True}),
    ]
    assert broker.exchanges == 1
    # A later effect is a later message.
    await said.committed({"mission:3"})
    assert [m for _, m in broker.sent[2:]] == [
        {"tags": ["mission:3"], "origin": cache.origin}, {"wake": True}]


async def test_a_broker_that_does_not_answer_is_given_up_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notices, "PUBLISH_SECONDS", 0.05)
    cache = ReadCache(max_entries=100, ttl_seconds=1.0, clock=FrozenClock())
    said = CommitNotices(Broker(hang=True), cache)
    with pytest.raises(TimeoutError):
        await said.committed({"mission:1"})
