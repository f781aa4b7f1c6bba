"""Outbox event handlers: each is idempotent and runs in the worker's transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.bootstrap import Container
from missionlink.domain import events
from missionlink.services import mission_threads, overlay, read_model, settlement

Handler = Callable[[AsyncConnection, dict[str, Any], Container], Awaitable[None]]


async def settle_mission(conn: AsyncConnection, payload: dict[str, Any], c: Container) -> None:
    await settlement.settle(conn, int(payload["mission_id"]), c.clock.now())


async def broadcast(conn: AsyncConnection, payload: dict[str, Any], c: Container) -> None:
    """Drop what the event changed from every API process's read model (settlement and
    expiry come this way), then fan it out to live overlays and pages of the channel (any
    API process). In that order: a page that reloads itself on the event must not be
    handed the cached copy from before it."""
    await c.read_cache.announce(c.broker, read_model.tags_of_event(payload))
    await c.broker.publish(f"channel:{payload['streamer_id']}", payload)


def broadcast_as(topic: str) -> Handler:
    """``broadcast`` with the event's type and what the overlay shows (names, titles)."""

    async def handler(conn: AsyncConnection, payload: dict[str, Any], c: Container) -> None:
        event = await overlay.overlay_event(conn, topic, payload, c.clock.now())
        await broadcast(conn, event, c)

    return handler


async def open_board_thread(
    conn: AsyncConnection, payload: dict[str, Any], c: Container
) -> None:
    await mission_threads.open_thread(conn, int(payload["mission_id"]), c.clock.now())


async def post_board_result(
    conn: AsyncConnection, payload: dict[str, Any], c: Container
) -> None:
    await mission_threads.post_result(conn, int(payload["mission_id"]), c.clock.now())


#: topic -> (handler name, handler); names are recorded per event in processed_events.
HANDLERS: dict[str, list[tuple[str, Handler]]] = {
    events.MISSION_ENDED: [
        ("settlement", settle_mission), ("broadcast", broadcast_as(events.MISSION_ENDED))
    ],
    events.MISSION_CREATED: [
        ("board_thread", open_board_thread), ("broadcast", broadcast_as(events.MISSION_CREATED))
    ],
    events.MISSION_ACCEPTED: [("broadcast", broadcast_as(events.MISSION_ACCEPTED))],
    events.MISSION_SETTLED: [
        ("board_thread", post_board_result), ("broadcast", broadcast_as(events.MISSION_SETTLED))
    ],
    events.PLEDGE_CREATED: [("broadcast", broadcast_as(events.PLEDGE_CREATED))],
    events.BET_PLACED: [("broadcast", broadcast_as(events.BET_PLACED))],
}
