"""The caller's own activity for My page: missions proposed, pledges and bets, with outcomes.

Read-only and per caller, so never from, nor into, the shared read model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from missionlink.api.deps import CurrentUser, Deps
from missionlink.api.pagination import PageParams, encode_int
from missionlink.services import my_activity

router = APIRouter(prefix="/api/v1/me", tags=["me"])

SettledOnly = Annotated[bool, Query(description="only those whose mission is settled")]


def _page(result: my_activity.Page) -> dict[str, Any]:
    items, nxt = result
    return {"items": items, "next_cursor": encode_int(nxt)}


@router.get("/missions")
async def my_missions(user: CurrentUser, c: Deps, page: PageParams) -> dict[str, Any]:
    """Missions the caller proposed, newest first, each with its ``outcome``: ``open``,
    ``settling``, ``paid_out`` (succeeded: the pledges went to the streamer) or
    ``refunded``."""
    async with c.core_db.read() as conn:
        return _page(await my_activity.my_missions(
            conn, user_id=user.user_id, now=c.clock.now(), limit=page.limit,
            before_id=page.int_cursor()))


@router.get("/pledges")
async def my_pledges(
    user: CurrentUser, c: Deps, page: PageParams, settled: SettledOnly = False
) -> dict[str, Any]:
    """The caller's pledges, newest first, with the mission's title and the ``outcome``
    (``open``, ``settling``, ``paid_out`` or ``refunded`` with the ``refunded`` amount);
    ``?settled=true`` keeps those whose mission is settled (the results)."""
    async with c.core_db.read() as conn:
        return _page(await my_activity.my_pledges(
            conn, user_id=user.user_id, now=c.clock.now(), limit=page.limit,
            before_id=page.int_cursor(), settled=settled))


@router.get("/bets")
async def my_bets(
    user: CurrentUser, c: Deps, page: PageParams, settled: SettledOnly = False
) -> dict[str, Any]:
    """The caller's bets, newest first, with the mission's title and the ``outcome``
    (``open``, ``settling``, ``won``, ``lost`` or ``refunded``; ``points_back`` is what
    came back to the points wallet); ``?settled=true`` keeps those whose mission is
    settled."""
    async with c.core_db.read() as conn:
        return _page(await my_activity.my_bets(
            conn, user_id=user.user_id, now=c.clock.now(), limit=page.limit,
            before_id=page.int_cursor(), settled=settled))
