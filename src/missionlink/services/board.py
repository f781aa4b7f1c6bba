"""Fan board use cases: posts and comments per channel, search, moderation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.board_tables import comments, posts
from missionlink.adapters.db.core_tables import channels, members
from missionlink.domain import board as rules
from missionlink.domain.errors import InvalidInput, NotFound
from missionlink.domain.timestamps import iso


def post_out(row: Row[Any], comment_count: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "streamer_id": row.streamer_id,
        "author_id": row.author_id,
        "author_display_name": row.display_name,
        "mission_id": row.mission_id,
        "title": row.title,
        "body": row.body,
        "comment_count": comment_count,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "edited": row.updated_at != row.created_at,
    }


def comment_out(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "post_id": row.post_id,
        "author_id": row.author_id,
        "author_display_name": row.display_name,
        "body": row.body,
        "created_at": iso(row.created_at),
        "edited_at": iso(row.edited_at) if row.edited_at is not None else None,
    }


def _posts_with_author() -> Any:
    return select(posts, members.c.display_name).outerjoin(
        members, members.c.user_id == posts.c.author_id
    )


async def _comment_counts(conn: AsyncConnection, post_ids: Sequence[int]) -> dict[int, int]:
    """Live comments per post, counted from the comments index: no counter row to contend."""
    if not post_ids:
        return {}
    rows = await conn.execute(
        select(comments.c.post_id, func.count())
        .where(comments.c.post_id.in_(post_ids), comments.c.deleted_at.is_(None))
        .group_by(comments.c.post_id)
    )
    return {r[0]: int(r[1]) for r in rows}


async def _live_post(conn: AsyncConnection, post_id: int) -> Row[Any]:
    row = (
        await conn.execute(
            _posts_with_author().where(posts.c.id == post_id, posts.c.deleted_at.is_(None))
        )
    ).first()
    if row is None:
        raise NotFound(f"post {post_id} does not exist")
    return row


async def _channel_exists(conn: AsyncConnection, streamer_id: int) -> bool:
    found = await conn.execute(
        select(channels.c.streamer_id).where(channels.c.streamer_id == streamer_id)
    )
    return found.first() is not None


async def create_post(
    conn: AsyncConnection, *, now: datetime, author_id: int, streamer_id: int, title: str,
    body: str, mission_id: int | None = None,
) -> dict[str, Any]:
    title = rules.check_title(title)
    body = rules.check_body(body)
    if not await _channel_exists(conn, streamer_id):
        raise NotFound(f"channel {streamer_id} does not exist")
    post_id = await conn.scalar(
        insert(posts)
        .values(streamer_id=streamer_id, author_id=author_id, mission_id=mission_id,
                title=title, body=body, created_at=now, updated_at=now)
        .returning(posts.c.id)
    )
    assert post_id is not None
    return post_out(await _live_post(conn, post_id), 0)


async def get_post(conn: AsyncConnection, post_id: int) -> dict[str, Any]:
    row = await _live_post(conn, post_id)
    return post_out(row, (await _comment_counts(conn, [post_id])).get(post_id, 0))


async def list_posts(
    conn: AsyncConnection, *, streamer_id: int, limit: int, before_id: int | None,
    query: str | None = None, after_id: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; the cursor is the last id seen, so new posts never shift a page."""
    items, older, _ = await list_posts_both_ways(
        conn, streamer_id=streamer_id, limit=limit, before_id=before_id, after_id=after_id,
        query=query)
    return items, older


async def list_posts_both_ways(
    conn: AsyncConnection, *, streamer_id: int, limit: int, before_id: int | None,
    after_id: int | None = None, query: str | None = None,
) -> tuple[list[dict[str, Any]], int | None, int | None]:
    """One page of posts, newest first, and the bounds to page on from it.

    ``before_id`` asks for the page of posts older than it, ``after_id`` for the page of
    posts newer than it (the page just before, for a reader paging back). Returns the items,
    the id to pass as ``before_id`` for the older page and the id to pass as ``after_id``
    for the newer page (``None`` when there is no such page).
    """
    if not await _channel_exists(conn, streamer_id):
        raise NotFound(f"channel {streamer_id} does not exist")
    query = rules.check_search(query)
    base = [posts.c.streamer_id == streamer_id, posts.c.deleted_at.is_(None)]
    if query is not None:
        base.append(search_clause(query))
    page, older, newer = await _page_both_ways(
        conn, _posts_with_author().where(*base), posts.c.id, base, limit=limit,
        before_id=before_id, after_id=after_id)
    counts = await _comment_counts(conn, [r.id for r in page])
    return [post_out(r, counts.get(r.id, 0)) for r in page], older, newer


async def _page_both_ways(
    conn: AsyncConnection, stmt: Any, id_col: Any, where: list[Any], *, limit: int,
    before_id: int | None, after_id: int | None,
) -> tuple[list[Row[Any]], int | None, int | None]:
    """Rows of ``stmt`` newest first (by ``id_col``): older than ``before_id``, newer than
    ``after_id`` or the newest; with the bound for the older page and for the newer one."""
    if before_id is not None and after_id is not None:
        raise InvalidInput("page either older or newer, not both")
    stmt = stmt.limit(limit + 1)

    async def any_row(bound: Any) -> bool:
        found = await conn.execute(select(id_col).where(*where, bound).limit(1))
        return found.first() is not None

    if after_id is not None:
        # Walk the index forwards from the bound, then show the page newest first.
        rows = list(await conn.execute(stmt.where(id_col > after_id).order_by(id_col.asc())))
        page = list(reversed(rows[:limit]))
        older_bound = page[-1].id if page else after_id + 1
        older = older_bound if await any_row(id_col < older_bound) else None
        return page, older, (page[0].id if len(rows) > limit else None)
    if before_id is not None:
        stmt = stmt.where(id_col < before_id)
    rows = list(await conn.execute(stmt.order_by(id_col.desc())))
    page = rows[:limit]
    newer = None
    if before_id is not None:
        newer_bound = page[0].id if page else before_id - 1
        newer = newer_bound if await any_row(id_col > newer_bound) else None
    return page, (page[-1].id if len(rows) > limit else None), newer


def search_clause(query: str) -> Any:
    """Case-insensitive substring in the title, the body or a live comment's body.

    A union of ids rather than an ``OR`` with a correlated ``EXISTS``: each arm is served by
    its own trigram index on PostgreSQL (an ``OR`` spanning a subquery scans every post).
    """
    pattern = rules.like_pattern(query)
    in_post = select(posts.c.id).where(
        or_(posts.c.title.ilike(pattern, escape="\\"),
            posts.c.body.ilike(pattern, escape="\\")))
    in_comment = select(comments.c.post_id).where(
        comments.c.body.ilike(pattern, escape="\\"), comments.c.deleted_at.is_(None))
    return posts.c.id.in_(union(in_post, in_comment))


async def edit_post(
    conn: AsyncConnection, *, now: datetime, actor: rules.Actor, post_id: int,
    changes: dict[str, str],
) -> dict[str, Any]:
    row = await _live_post(conn, post_id)
    rules.check_edit(actor, author_id=row.author_id)
    values: dict[str, Any] = {}
    if "title" in changes:
        values["title"] = rules.check_title(changes["title"])
    if "body" in changes:
        values["body"] = rules.check_body(changes["body"])
    if not values:
        raise InvalidInput.of(None, "required", "send title and/or body to change")
    await conn.execute(update(posts).where(posts.c.id == post_id).values(**values,
                                                                          updated_at=now))
    return await get_post(conn, post_id)


async def delete_post(
    conn: AsyncConnection, *, now: datetime, actor: rules.Actor, post_id: int
) -> None:
    row = await _live_post(conn, post_id)
    rules.check_delete(actor, author_id=row.author_id, streamer_id=row.streamer_id)
    await conn.execute(update(posts).where(posts.c.id == post_id).values(deleted_at=now))


def _comments_with_author() -> Any:
    return select(comments, members.c.display_name).outerjoin(
        members, members.c.user_id == comments.c.author_id
    )


async def add_comment(
    conn: AsyncConnection, *, now: datetime, author_id: int, post_id: int, body: str
) -> dict[str, Any]:
    body = rules.check_comment(body)
    await _live_post(conn, post_id)
    comment_id = await conn.scalar(
        insert(comments)
        .values(post_id=post_id, author_id=author_id, body=body, created_at=now)
        .returning(comments.c.id)
    )
    row = (await conn.execute(_comments_with_author().where(comments.c.id == comment_id))).one()
    return comment_out(row)


async def list_comments(
    conn: AsyncConnection, *, post_id: int, limit: int, before_id: int | None,
    after_id: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    items, older, _ = await list_comments_both_ways(
        conn, post_id=post_id, limit=limit, before_id=before_id, after_id=after_id)
    return items, older


async def list_comments_both_ways(
    conn: AsyncConnection, *, post_id: int, limit: int, before_id: int | None,
    after_id: int | None = None,
) -> tuple[list[dict[str, Any]], int | None, int | None]:
    """Comments newest first, paged like posts (see :func:`list_posts_both_ways`)."""
    await _live_post(conn, post_id)
    where = [comments.c.post_id == post_id, comments.c.deleted_at.is_(None)]
    page, older, newer = await _page_both_ways(
        conn, _comments_with_author().where(*where), comments.c.id, where, limit=limit,
        before_id=before_id, after_id=after_id)
    return [comment_out(r) for r in page], older, newer


async def _live_comment(conn: AsyncConnection, comment_id: int) -> Any:
    """A comment that is not deleted, on a post that is not deleted; else 404."""
    row = (
        await conn.execute(
            select(comments.c.author_id, comments.c.body, comments.c.post_id,
                   posts.c.streamer_id)
            .join(posts, posts.c.id == comments.c.post_id)
            .where(
                comments.c.id == comment_id,
                comments.c.deleted_at.is_(None),
                posts.c.deleted_at.is_(None),
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"comment {comment_id} does not exist")
    return row


async def edit_comment(
    conn: AsyncConnection, *, now: datetime, actor: rules.Actor, comment_id: int, body: str
) -> dict[str, Any]:
    """The author changes the text. Sending the text it already has changes nothing, so a
    repeated request answers the same comment (``edited_at`` included)."""
    row = await _live_comment(conn, comment_id)
    rules.check_comment_edit(actor, author_id=row.author_id)
    body = rules.check_comment(body)
    if body != row.body:
        await conn.execute(
            update(comments).where(comments.c.id == comment_id).values(body=body,
                                                                        edited_at=now)
        )
    found = await conn.execute(_comments_with_author().where(comments.c.id == comment_id))
    return comment_out(found.one())


async def delete_comment(
    conn: AsyncConnection, *, now: datetime, actor: rules.Actor, comment_id: int
) -> int:
    """Delete a live comment; returns the id of its post."""
    row = await _live_comment(conn, comment_id)
    rules.check_delete(actor, author_id=row.author_id, streamer_id=row.streamer_id)
    await conn.execute(
        update(comments).where(comments.c.id == comment_id).values(deleted_at=now)
    )
    return int(row.post_id)
