"""Proposing a mission: the channel's terms, the proposer's cooldown and cancel limit,
and the proposer's own first pledge."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import outbox
from missionlink.adapters.db.core_tables import channels, missions
from missionlink.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, ProposalBlocked
from missionlink.domain.missions import Status
from missionlink.services.mission_views import get_mission
from missionlink.services.missions.limits import MissionLimits, check_pledge_amount
from missionlink.services.missions.pledging import record_pledge

DAY = timedelta(hours=24)


async def check_proposal_allowed(
    conn: AsyncConnection, settings: MissionLimits, creator_id: int, streamer_id: int, now: datetime
) -> None:
    cooldown = timedelta(seconds=settings.proposal_cooldown_seconds)
    last_refused = await conn.scalar(
        select(func.max(missions.c.ended_at)).where(
            missions.c.creator_id == creator_id,
            missions.c.streamer_id == streamer_id,
            missions.c.status.in_([Status.rejected.value, Status.cancelled.value]),
            missions.c.ended_at > now - cooldown,
        )
    )
    if last_refused is not None:
        wait = math.ceil((last_refused + cooldown - now).total_seconds())
        raise ProposalBlocked(
            f"your last mission on this channel was rejected or cancelled; retry in {wait} s",
            retry_after=max(wait, 1),
        )
    cancels = (
        await conn.execute(
            select(func.count(), func.max(missions.c.ended_at)).where(
                missions.c.creator_id == creator_id,
                missions.c.status == Status.cancelled.value,
                missions.c.ended_at > now - DAY,
            )
        )
    ).one()
    if cancels[0] >= settings.cancel_limit_per_day:
        wait = math.ceil((cancels[1] + DAY - now).total_seconds())
        raise ProposalBlocked(
            f"{cancels[0]} cancelled missions in 24 hours; proposing is blocked for {wait} s",
            retry_after=max(wait, 1),
        )


async def create_mission(
    conn: AsyncConnection,
    *,
    settings: MissionLimits,
    now: datetime,
    creator_id: int,
    streamer_id: int,
    title: str,
    description: str,
    amount: int,
    duration_seconds: int,
) -> dict[str, Any]:
    check_pledge_amount(settings, amount)
    if not settings.min_mission_seconds <= duration_seconds <= settings.max_mission_seconds:
        raise InvalidInput(
            f"duration_seconds must be between {settings.min_mission_seconds} and "
            f"{settings.max_mission_seconds}"
        )
    if creator_id == streamer_id:
        raise Forbidden("you cannot propose a mission to your own channel")
    channel = (
        await conn.execute(select(channels).where(channels.c.streamer_id == streamer_id))
    ).first()
    if channel is None:
        raise NotFound(f"streamer {streamer_id} does not exist")
    if not channel.missions_enabled:
        raise Conflict("this streamer is not taking missions right now")
    if amount < channel.min_mission_amount:
        raise InvalidInput(
            f"this channel's missions start at {channel.min_mission_amount} KRW"
        )
    await check_proposal_allowed(conn, settings, creator_id, streamer_id, now)
    deadline = now + timedelta(seconds=duration_seconds)
    accept_by = min(deadline, now + timedelta(seconds=channel.accept_timeout_seconds))
    mission_id = await conn.scalar(
        insert(missions)
        .values(
            streamer_id=streamer_id,
            creator_id=creator_id,
            title=title,
            description=description,
            status=Status.pending.value,
            fee_bps=settings.platform_fee_bps,
            created_at=now,
            accept_by=accept_by,
            deadline_at=deadline,
            result_by=deadline + timedelta(seconds=settings.result_grace_seconds),
        )
        .returning(missions.c.id)
    )
    assert mission_id is not None
    await outbox.emit(
        conn,
        outbox.MISSION_CREATED,
        {"mission_id": mission_id, "streamer_id": streamer_id, "creator_id": creator_id},
        now,
    )
    await record_pledge(conn, mission_id, streamer_id, creator_id, amount, now)
    return await get_mission(conn, mission_id, now)
