"""Each mission's board thread: opened when it is proposed, told its result when settled."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.board_tables import comments, posts
from missionlink.adapters.db.core_tables import missions
from missionlink.adapters.db.sql import insert_ignore
from missionlink.domain import board as rules
from missionlink.services.mission_views import totals


def thread_body(description: str, mission_id: int) -> str:
    intro = f"새 미션이 제안되었습니다. A new mission was proposed. (#{mission_id})"
    text = f"{intro}\n\n{description}" if description.strip() else intro
    return text[: rules.BODY_MAX]


async def open_thread(conn: AsyncConnection, mission_id: int, now: datetime) -> None:
    """Post the thread as the mission's creator; a second call does nothing."""
    m = (await conn.execute(select(missions).where(missions.c.id == mission_id))).first()
    if m is None:
        return
    await insert_ignore(conn, posts, {
        "streamer_id": m.streamer_id,
        "author_id": m.creator_id,
        "mission_id": mission_id,
        "title": rules.thread_title(m.title),
        "body": thread_body(m.description, mission_id),
        "created_at": now,
        "updated_at": now,
    })


async def post_result(conn: AsyncConnection, mission_id: int, now: datetime) -> None:
    """Comment the outcome on the thread as the streamer, unless the thread was deleted."""
    row = (
        await conn.execute(
            select(posts.c.id, missions.c.streamer_id, missions.c.status)
            .join(missions, missions.c.id == posts.c.mission_id)
            .where(posts.c.mission_id == mission_id, posts.c.deleted_at.is_(None))
        )
    ).first()
    if row is None:
        return
    total, _ = (await totals(conn, [mission_id])).get(mission_id, (0, 0))
    await conn.execute(
        insert(comments).values(
            post_id=row.id, author_id=row.streamer_id, created_at=now,
            body=rules.result_comment(row.status, total),
        )
    )
