"""Outbox event handlers: each is idempotent and runs in the worker's transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.bootstrap import Container
from missionlink.services import outbox, settlement

Handler = Callable[[AsyncConnection, dict[str, Any], Container], Awaitable[None]]


async def settle_mission(conn: AsyncConnection, payload: dict[str, Any], c: Container) -> None:
    await settlement.settle(conn, int(payload["mission_id"]), c.clock.now())


async def broadcast(conn: AsyncConnection, payload: dict[str, Any], c: Container) -> None:
    """Fan the event out to live overlays of the channel (any API process)."""
    await c.broker.publish(f"channel:{payload['streamer_id']}", payload)


#: topic -> (handler name, handler); names are recorded per event in processed_events.
HANDLERS: dict[str, list[tuple[str, Handler]]] = {
    outbox.MISSION_ENDED: [("settlement", settle_mission), ("broadcast", broadcast)],
    outbox.MISSION_CREATED: [("broadcast", broadcast)],
    outbox.MISSION_ACCEPTED: [("broadcast", broadcast)],
    outbox.MISSION_SETTLED: [("broadcast", broadcast)],
    outbox.PLEDGE_CREATED: [("broadcast", broadcast)],
    outbox.BET_PLACED: [("broadcast", broadcast)],
}
