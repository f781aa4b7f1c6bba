"""Streamer payouts: the payout account, earnings, withdrawals and the yearly statement;
and the admin's bank transfer batches (docs/payments.md, "Payouts")."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.api.deps import CurrentStreamer, Deps, IdempotencyKey
from missionlink.api.effects import run_effect
from missionlink.api.params import Limit, PathId
from missionlink.api.problems import MEDIA_TYPE, Problem
from missionlink.api.routers.admin import Admin
from missionlink.api.schemas.payouts import (
    AdminWithdrawalList,
    PayoutAccountIn,
    PayoutAccountOut,
    PayoutBatchOut,
    PayoutSummary,
    StatementOut,
    WithdrawalFailedIn,
    WithdrawalIn,
    WithdrawalList,
    WithdrawalMarked,
    WithdrawalOut,
    WithdrawalStateName,
)
from missionlink.domain import payouts as P
from missionlink.domain.errors import InvalidInput, NotFound
from missionlink.services import payout_batches, payout_statements, payouts

router = APIRouter(prefix="/api/v1", tags=["payouts"])


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": description}


Responses = dict[int | str, dict[str, Any]]
_UNAVAILABLE: Responses = {503: _problem(
    "`payouts-unavailable`: no PAYOUT_ACCOUNT_KEYS configured, or a sealed account does not "
    "open with them")}
_STATE: Responses = {409: _problem(
    "`withdrawal-state`: the withdrawal's state does not allow this")}
_CSV = {"content": {"text/csv": {"schema": {"type": "string"}}}}
Year = Annotated[int, Path(ge=2000, le=2100, description="calendar year (KST)")]


def _hold(c: Deps) -> timedelta:
    return timedelta(days=c.settings.payout_hold_days)


@router.put("/me/payout-account", response_model=PayoutAccountOut, responses=_UNAVAILABLE)
async def put_payout_account(body: PayoutAccountIn, user: CurrentStreamer, c: Deps
                             ) -> dict[str, Any]:
    """Register or replace the bank account withdrawals are paid to; stored sealed, shown
    masked. Withdrawals already requested keep the account they were asked to."""
    vault = payouts.require(c.vault)
    account = P.check_account(body.bank_code, body.account_number, body.holder)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await payouts.put_account(conn, user_id=user.user_id, account=account,
                                         vault=vault, now=c.clock.now())

    return await c.core_db.transaction(work)


@router.get("/me/payout-account", response_model=PayoutAccountOut, responses=_UNAVAILABLE)
async def get_payout_account(user: CurrentStreamer, c: Deps) -> dict[str, Any]:
    vault = payouts.require(c.vault)
    async with c.core_db.read() as conn:
        return await payouts.get_account(conn, user_id=user.user_id, vault=vault)


@router.delete("/me/payout-account", status_code=204, responses=_UNAVAILABLE)
async def delete_payout_account(user: CurrentStreamer, c: Deps) -> Response:
    payouts.require(c.vault)

    async def work(conn: AsyncConnection) -> None:
        await payouts.delete_account(conn, user_id=user.user_id)

    await c.core_db.transaction(work)
    return Response(status_code=204)


@router.get("/me/payouts", response_model=PayoutSummary, responses=_UNAVAILABLE)
async def payout_summary(user: CurrentStreamer, c: Deps) -> dict[str, Any]:
    """Earnings in hold, withdrawable, requested and paid (KRW), and the account."""
    vault = payouts.require(c.vault)
    async with c.core_db.read() as conn:
        out = await payouts.summary(conn, user_id=user.user_id, hold=_hold(c),
                                    now=c.clock.now())
        try:
            account = await payouts.get_account(conn, user_id=user.user_id, vault=vault)
        except NotFound:
            account = None
    return {**out, "hold_days": c.settings.payout_hold_days,
            "minimum": c.settings.payout_minimum, "account": account}


@router.post(
    "/me/withdrawals", status_code=201, response_model=None,
    responses={201: {"model": WithdrawalOut, "description": "the withdrawal, requested"},
               **_UNAVAILABLE, 409: _problem(
                   "`not-withdrawable`: more than is withdrawable now; "
                   "`payout-account-missing`: no payout account registered; "
                   "`payout-account-cooling-down`: the account was registered or changed "
                   "less than PAYOUT_ACCOUNT_COOLDOWN_HOURS ago (`retry_after`, seconds)")},
)
async def request_withdrawal(body: WithdrawalIn, request: Request, user: CurrentStreamer,
                             c: Deps, key: IdempotencyKey) -> JSONResponse:
    """Withdraw earnings to the payout account (``Idempotency-Key`` required): the gross
    leaves the wallet, the withheld tax is kept, the net goes out in the next batch."""
    payouts.require(c.vault)
    if key is None:
        raise InvalidInput.of("Idempotency-Key", "required",
                              "a withdrawal needs an Idempotency-Key header")
    idem_key = key

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await payouts.request_withdrawal(
            conn, user_id=user.user_id, amount=body.amount, key=idem_key, hold=_hold(c),
            minimum=c.settings.payout_minimum, now=c.clock.now(),
            cooldown=timedelta(hours=c.settings.payout_account_cooldown_hours))

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.get("/me/withdrawals", response_model=WithdrawalList)
async def my_withdrawals(user: CurrentStreamer, c: Deps, limit: Limit = 20
                         ) -> dict[str, Any]:
    """The caller's withdrawals, newest first: gross, withholding, net and state."""
    async with c.core_db.read() as conn:
        return {"items": await payouts.list_withdrawals(conn, user_id=user.user_id,
                                                        limit=limit)}


@router.get("/me/statements/{year}", response_model=None,
            responses={200: {"model": StatementOut,
                             "description": "the year per month (KST): as CSV (default, an "
                                            "attachment) or with `?format=json`", **_CSV}})
async def my_statement(year: Year, user: CurrentStreamer, c: Deps,
                       format: Literal["csv", "json"] = "csv") -> Any:
    async with c.core_db.read() as conn:
        out = await payout_statements.statement(conn, user_id=user.user_id, year=year)
    if format == "json":
        return out
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=payout_statements.FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(out["months"])
    writer.writerow({"month": "total", **out["total"]})
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="missionlink-statement-{year}.csv"'})


@router.get("/admin/withdrawals", response_model=AdminWithdrawalList)
async def admin_withdrawals(_: Admin, c: Deps, state: WithdrawalStateName | None = None,
                            limit: Limit = 20) -> dict[str, Any]:
    """Withdrawals of every streamer, newest first, optionally in one state."""
    async with c.core_db.read() as conn:
        return {"items": await payout_batches.list_withdrawals(conn, state=state, limit=limit)}


@router.post("/admin/payout-batches", status_code=201, response_model=None,
             responses={201: {"model": PayoutBatchOut, "description": "the batch"},
                        **_UNAVAILABLE, **_STATE})
async def export_batch(request: Request, user: Admin, c: Deps, key: IdempotencyKey
                       ) -> JSONResponse:
    """Put every requested withdrawal in a new bank transfer batch (they become
    ``exported``); then download its file."""
    payouts.require(c.vault)

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await payout_batches.export_batch(conn, admin_id=user.user_id,
                                                 now=c.clock.now())

    return await run_effect(request, c, user_id=user.user_id, key=key, work=work,
                            status_code=201)


@router.get("/admin/payout-batches/{batch_id}/transfers.csv", response_model=None,
            responses={200: {"description": "the bank transfer file: bank_code, "
                                            "account_number, holder, amount (net), reference",
                             **_CSV}, **_UNAVAILABLE})
async def batch_file(batch_id: PathId, _: Admin, c: Deps) -> Response:
    vault = payouts.require(c.vault)
    async with c.core_db.read() as conn:
        text = await payout_batches.batch_csv(conn, batch_id=batch_id, vault=vault)
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="payout-batch-{batch_id}.csv"',
        "Cache-Control": "no-store"})


@router.post("/admin/withdrawals/{withdrawal_id}/paid", response_model=WithdrawalMarked,
             responses=_STATE)
async def mark_paid(withdrawal_id: PathId, _: Admin, c: Deps) -> dict[str, Any]:
    """The bank sent it. Marking a paid one again changes nothing (``applied: false``)."""

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await payout_batches.mark_paid(conn, withdrawal_id=withdrawal_id,
                                              now=c.clock.now())

    return await c.core_db.transaction(work)


@router.post("/admin/withdrawals/{withdrawal_id}/failed", response_model=WithdrawalMarked,
             responses=_STATE)
async def mark_failed(withdrawal_id: PathId, body: WithdrawalFailedIn, _: Admin, c: Deps
                      ) -> dict[str, Any]:
    """The bank refused it: the gross goes back to the streamer's wallet with the reason.
    Marking a failed one again changes nothing (``applied: false``)."""

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        return await payout_batches.mark_failed(conn, withdrawal_id=withdrawal_id,
                                                reason=body.reason, now=c.clock.now())

    return await c.core_db.transaction(work)
