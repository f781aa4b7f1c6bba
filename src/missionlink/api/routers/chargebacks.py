"""A wallet's chargebacks and the debt they leave (docs/payments.md, "Chargebacks")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.api.deps import CurrentUser, Deps, IdempotencyKey
from missionlink.api.effects import run_effect
from missionlink.api.params import Limit
from missionlink.api.problems import MEDIA_TYPE, Problem
from missionlink.api.schemas.payments import ChargebackList, DebtRepaid
from missionlink.services import chargebacks

router = APIRouter(prefix="/api/v1", tags=["wallet"])


@router.get("/wallet/chargebacks", response_model=ChargebackList)
async def list_chargebacks(user: CurrentUser, c: Deps, limit: Limit = 20) -> dict[str, Any]:
    """The caller's chargebacks, newest first: top-up money a provider took back."""
    async with c.core_db.read() as conn:
        return {"items": await chargebacks.list_chargebacks(conn, user.user_id, limit=limit)}


@router.post(
    "/wallet/debt/repay", response_model=None,
    responses={200: {"model": DebtRepaid, "description": "the debt, paid from cash as far "
                                                         "as the cash goes"},
               409: {"model": Problem, "content": {MEDIA_TYPE: {}},
                     "description": "`insufficient-funds`: there is debt but no cash to "
                                    "pay it with"}},
)
async def repay_debt(
    request: Request, user: CurrentUser, c: Deps, key: IdempotencyKey
) -> JSONResponse:
    """Pay the wallet's debt from its cash (a top-up pays it by itself)."""

    async def work(conn: AsyncConnection) -> dict[str, int]:
        return await chargebacks.repay_debt(conn, user_id=user.user_id, now=c.clock.now(),
                                            required=True)

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work)
