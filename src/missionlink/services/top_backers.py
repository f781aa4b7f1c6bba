"""A channel's top backers: who has backed the streamer's missions the most.

What counts is cash the streamer keeps or may still keep: pledges on missions that
``succeeded`` (paid out, or about to be at settlement) and on open missions (held in
escrow). Pledges on missions that ended ``rejected``, ``cancelled``, ``failed`` or
``expired`` are left out — they are refunded, or will be at settlement — and so are those on
an open mission past the moment it reads ``expired`` (``domain/missions.py::expires_at``),
which the expiry sweep will refund. So a backer never ranks on money they got back.

Anonymous pledges are left out: the ranking names its backers, and a pledge made
anonymously must name nobody in public (docs/web.md, pledge messages).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import members, missions, pledges
from missionlink.domain.missions import Status

TOP_BACKERS = 10


def _counted(now: datetime) -> Any:
    """Missions whose pledges count at ``now``: succeeded, or open and not yet expired."""
    return or_(
        missions.c.status == Status.succeeded.value,
        and_(missions.c.status == Status.pending.value,
             missions.c.accept_by > now, missions.c.deadline_at > now),
        and_(missions.c.status == Status.accepted.value,
             func.coalesce(missions.c.result_by, missions.c.deadline_at) > now),
    )


async def top_backers(
    conn: AsyncConnection, *, streamer_id: int, now: datetime, limit: int = TOP_BACKERS
) -> list[dict[str, Any]]:
    """The channel's biggest backers, largest total first (the earlier member first on a
    tie): rank, display name, total pledged and number of pledges. No user ids."""
    total = func.sum(pledges.c.amount).label("total")
    stmt = (
        select(pledges.c.user_id, members.c.display_name, total,
               func.count().label("pledge_count"))
        .select_from(pledges)
        .join(missions, missions.c.id == pledges.c.mission_id)
        .join(members, members.c.user_id == pledges.c.user_id)
        .where(missions.c.streamer_id == streamer_id, _counted(now), ~pledges.c.anonymous)
        .group_by(pledges.c.user_id, members.c.display_name)
        .order_by(total.desc(), pledges.c.user_id)
        .limit(limit)
    )
    rows = list(await conn.execute(stmt))
    return [
        {"rank": i, "display_name": r.display_name, "total_pledged": int(r.total),
         "pledge_count": int(r.pledge_count)}
        for i, r in enumerate(rows, start=1)
    ]
