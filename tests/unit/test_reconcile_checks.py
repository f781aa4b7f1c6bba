"""reconcile.check runs each invariant as its own named check (services/reconcile.py):
every one is reported by name, in order, a broken one fails under its own name, and a
check added with ``@invariant`` joins the report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import wallets
from missionlink.services import reconcile
from missionlink.services.members import MemberDefaults, open_member
from tests.fakes import MemoryCore

NOW = datetime(2025, 8, 1, 12, 0, tzinfo=UTC)
WALLETS = "wallet balances equal their journal and are not negative"


@pytest.fixture
async def core() -> AsyncIterator[MemoryCore]:
    core = await MemoryCore().create()
    defaults = MemberDefaults.within(signup_points=0, min_pledge=1_000,
                                     max_mission_seconds=86_400)
    async with core.unit() as conn:
        for user_id, role in ((1, "streamer"), (2, "viewer")):
            await open_member(conn, defaults=defaults, user_id=user_id,
                              display_name=f"user {user_id}", role=role, now=NOW)
    yield core
    await core.close()


async def test_every_invariant_is_reported_by_name_in_order(core: MemoryCore) -> None:
    async with core.unit() as conn:
        report = await reconcile.check(conn)
    assert report.ok, report.render()
    assert report.checked == [name for name, _ in reconcile.CHECKS]
    assert len(set(report.checked)) == len(report.checked) == 16
    assert report.checked[-3:] == [
        "withdrawal clearing holds the withdrawals on their way",
        "withholding holds the tax of withdrawals not failed",
        "each withdrawal's journal matches its state"]
    assert report.render().splitlines()[-1] == "all invariants hold"


async def test_a_broken_invariant_fails_under_its_own_name(core: MemoryCore) -> None:
    async with core.unit() as conn:
        await conn.execute(update(wallets).where(wallets.c.user_id == 2).values(cash_balance=5))
        report = await reconcile.check(conn)
    assert not report.ok
    assert report.failures == [f"{WALLETS}: user:2:cash cached 5 but journal says 0"]
    assert f"FAIL {WALLETS}" in report.render()


async def test_a_check_added_with_invariant_joins_the_report(core: MemoryCore) -> None:
    before = list(reconcile.CHECKS)

    @reconcile.invariant("the added check")
    async def added(conn: AsyncConnection, books: reconcile.Books) -> list[str]:
        return [f"{len(books.balances)} accounts"]

    try:
        async with core.unit() as conn:
            report = await reconcile.check(conn)
    finally:
        reconcile.CHECKS[:] = before
    assert report.checked[-1] == "the added check"
    assert report.failures == ["the added check: 0 accounts"]


async def test_refund_money_without_its_refund_fails_the_refunds_check(core: MemoryCore) -> None:
    from sqlalchemy import insert

    from missionlink.adapters.db.core_tables import transfers

    name = "refunds are held, then paid out or reversed, once"
    async with core.unit() as conn:
        await conn.execute(insert(transfers).values(
            id="topup_refund:77", kind="topup_refund", currency="KRW",
            from_account="platform:fee", to_account="provider:stripe:refunds_pending",
            amount=500, created_at=NOW))
        report = await reconcile.check(conn)
    assert [f for f in report.failures if f.startswith(name)] == [
        f"{name}: transfer topup_refund:77 has no refund",
        f"{name}: provider:stripe:refunds_pending holds 500, pending refunds 0"]


async def test_a_debt_without_its_receivable_fails_the_receivables_check(
    core: MemoryCore,
) -> None:
    async with core.unit() as conn:
        await conn.execute(update(wallets).where(wallets.c.user_id == 2).values(debt=5))
        report = await reconcile.check(conn)
    assert report.failures == ["receivables equal wallet debts: user:2:receivable owes 0 "
                               "but the wallet's debt is 5"]
