"""Fan board: posts and comments per streamer channel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.security.tokens import AccessClaims
from missionlink.api.context import AppContext
from missionlink.api.deps import CurrentUser, Deps, IdempotencyKey
from missionlink.api.effects import committed, run_effect
from missionlink.api.pagination import PageParams, encode_int, encode_newer
from missionlink.api.params import PathId as Id
from missionlink.api.schemas.board import CommentIn, CommentPatch, PostIn, PostPatch
from missionlink.api.schemas.text import optional_cleaner, schema
from missionlink.domain.board import SEARCH, Actor
from missionlink.domain.errors import FieldError, InvalidInput
from missionlink.services import board
from missionlink.services.read_model import post_tag

router = APIRouter(prefix="/api/v1", tags=["board"])

def _actor(user: AccessClaims) -> Actor:
    return Actor(user_id=user.user_id, role=user.role)


async def _count_post(c: AppContext, user: AccessClaims) -> None:
    """Posts and comments share one per-user budget (RATE_LIMIT_POSTS_PER_MINUTE)."""
    await c.limiter.hit(f"post:{user.user_id}", limit=c.settings.rate_limit_posts_per_minute,
                        window=60, what="posts and comments")


@router.get("/channels/{streamer_id}/posts")
async def list_posts(
    streamer_id: Id, c: Deps, page: PageParams,
    q: Annotated[str | None, Query(json_schema_extra=schema(SEARCH)),
                 AfterValidator(optional_cleaner(SEARCH))] = None,
) -> dict[str, Any]:
    """A page of the channel's posts, newest first.

    ``next_cursor`` pages to older posts and ``prev_cursor`` back to newer ones; pass
    either as ``cursor``. Each is ``null`` when there is no such page. ``q`` matches a
    case-insensitive substring of a post's title, its body or the body of one of its live
    comments.
    """
    before_id, after_id = page.int_cursor_both_ways()
    async with c.core_db.read() as conn:
        items, nxt, prev = await board.list_posts_both_ways(
            conn, streamer_id=streamer_id, limit=page.limit, before_id=before_id,
            after_id=after_id, query=q,
        )
    return {"items": items, "next_cursor": encode_int(nxt), "prev_cursor": encode_newer(prev)}


@router.post("/channels/{streamer_id}/posts", status_code=201)
async def create_post(
    streamer_id: Id, body: PostIn, request: Request, user: CurrentUser, c: Deps,
    key: IdempotencyKey,
) -> JSONResponse:
    await _count_post(c, user)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await board.create_post(conn, now=c.clock.now(), author_id=user.user_id,
                                       streamer_id=streamer_id, title=body.title,
                                       body=body.body)

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.get("/posts/{post_id}")
async def show_post(post_id: Id, c: Deps) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        return await board.get_post(conn, post_id)


@router.patch("/posts/{post_id}")
async def edit_post(post_id: Id, body: PostPatch, user: CurrentUser, c: Deps) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if any(v is None for v in changes.values()):
        raise InvalidInput.all([FieldError(k, "required", "may not be null")
                                for k, v in changes.items() if v is None])
    async with c.core_db.begin() as conn:
        edited = await board.edit_post(conn, now=c.clock.now(), actor=_actor(user),
                                       post_id=post_id, changes=changes)
    await committed(c, {post_tag(post_id)})
    return edited


@router.delete("/posts/{post_id}", status_code=204)
async def delete_post(post_id: Id, user: CurrentUser, c: Deps) -> Response:
    async with c.core_db.begin() as conn:
        await board.delete_post(conn, now=c.clock.now(), actor=_actor(user), post_id=post_id)
    await committed(c, {post_tag(post_id)})
    return Response(status_code=204)


@router.get("/posts/{post_id}/comments")
async def list_comments(post_id: Id, c: Deps, page: PageParams) -> dict[str, Any]:
    """A page of the post's comments, newest first; ``next_cursor`` pages to older ones and
    ``prev_cursor`` back to newer ones (pass either as ``cursor``)."""
    before_id, after_id = page.int_cursor_both_ways()
    async with c.core_db.read() as conn:
        items, nxt, prev = await board.list_comments_both_ways(
            conn, post_id=post_id, limit=page.limit, before_id=before_id, after_id=after_id)
    return {"items": items, "next_cursor": encode_int(nxt), "prev_cursor": encode_newer(prev)}


@router.post("/posts/{post_id}/comments", status_code=201)
async def add_comment(
    post_id: Id, body: CommentIn, request: Request, user: CurrentUser, c: Deps,
    key: IdempotencyKey,
) -> JSONResponse:
    await _count_post(c, user)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await board.add_comment(conn, now=c.clock.now(), author_id=user.user_id,
                                       post_id=post_id, body=body.body)

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.patch("/comments/{comment_id}")
async def edit_comment(
    comment_id: Id, body: CommentPatch, request: Request, user: CurrentUser, c: Deps,
    key: IdempotencyKey,
) -> JSONResponse:
    """The author changes the comment's text (the rules and limits of a new comment).

    Only the author may; others get 403, a deleted comment or post 404. ``edited_at`` is
    set by a change; sending the text the comment already has changes nothing, and an
    ``Idempotency-Key`` replays the first answer.
    """

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await board.edit_comment(conn, now=c.clock.now(), actor=_actor(user),
                                        comment_id=comment_id, body=body.body)

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work)


@router.delete("/comments/{comment_id}", status_code=204)
async def delete_comment(comment_id: Id, user: CurrentUser, c: Deps) -> Response:
    async with c.core_db.begin() as conn:
        post_id = await board.delete_comment(conn, now=c.clock.now(), actor=_actor(user),
                                             comment_id=comment_id)
    await committed(c, {post_tag(post_id)})
    return Response(status_code=204)
