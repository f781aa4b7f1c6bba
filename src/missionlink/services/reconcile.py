"""Ledger invariants, checked against the live database (read-only, safe beside ``serve``).

1. Every transfer moves a positive integer between two different accounts in one currency
   (so the postings of every transfer, and of each currency, sum to zero).
2. Accounts hold one currency: user cash/escrow/fee/provider in KRW, points in PTS.
3. Each cached wallet balance equals the sum of its postings; none is negative.
4. An unsettled mission's escrow holds exactly its pledges, and its stake pool its bets;
   a settled mission's escrow and pool are empty.
5. Each pledge has its journal transfer; each refunded mission has one refund per pledge.
6. Completed top-ups equal what the provider clearing accounts paid out.
7. A settled mission has one result email job per distinct backer and one for the streamer.
8. Each mission's sharded running total equals the sum of its pledges.
9. Each completed top-up is credited once, with its amount, from its provider's clearing
   account to its owner's cash; no top-up in another state is credited; every top-up
   transfer has its top-up.
10. Each provider's refunds-pending account holds exactly its pending refunds; every refund
    has its hold, a succeeded one is paid out once (and not reversed), a failed one is
    reversed once (and not paid); no refund transfer lacks its refund, and no top-up is
    refunded past its amount.
11. Each receivable account holds minus its wallet's debt (what chargebacks left owed).
12. Each chargeback took its amount once, from its top-up owner's cash and receivable to
    its provider's clearing account, and gave it back once if (and only if) it was won;
    no top-up is taken back (chargebacks and refunds) past its amount.

Each invariant is one function marked ``@invariant(name)``, run by ``check`` in the order
it is defined; to add one, write another such function (it gets the shared ``Books``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import String, cast, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import (
    bets,
    chargebacks,
    email_jobs,
    mission_totals,
    missions,
    pledges,
    topup_refunds,
    topups,
    transfers,
    wallets,
)
from missionlink.adapters.db.sql import dialect_of
from missionlink.domain import ledger as L
from missionlink.observability import metrics
from missionlink.services.missions import PLEDGE_TRANSFER_PREFIX

log = structlog.get_logger("missionlink.reconcile")
#: How long one reconcile's statements may run on PostgreSQL (it scans the journal).
RECONCILE_STATEMENT_TIMEOUT = "15min"

@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def check(self, name: str, problems: list[str]) -> None:
        self.checked.append(name)
        self.failures += [f"{name}: {p}" for p in problems[:20]]
        if len(problems) > 20:
            self.failures.append(f"{name}: ... and {len(problems) - 20} more")

    def render(self) -> str:
        lines = [f"{'FAIL' if any(f.startswith(c + ':') for f in self.failures) else 'ok  '} {c}"
                 for c in self.checked]
        lines += [f"  - {f}" for f in self.failures]
        lines.append("all invariants hold" if self.ok else f"{len(self.failures)} problem(s)")
        return "\n".join(lines)


def _currency_of(account: str) -> str:
    return L.PTS if account.endswith((":points", ":pool")) or account == L.PLATFORM_POINTS_ACCOUNT \
        else L.KRW


async def account_balances(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    legs = union_all(
        select(transfers.c.to_account.label("account"), transfers.c.currency,
               transfers.c.amount.label("delta")),
        select(transfers.c.from_account, transfers.c.currency,
               (literal(0) - transfers.c.amount)),
    ).subquery()
    rows = await conn.execute(
        select(legs.c.account, legs.c.currency, func.sum(legs.c.delta)).group_by(
            legs.c.account, legs.c.currency
        )
    )
    return {(a, c): int(s) for a, c, s in rows}


#: A check reads the database (and the shared ``Books``) and returns its problems, one
#: line each; an empty list means the invariant holds.
Check = Callable[[AsyncConnection, "Books"], Awaitable[list[str]]]

#: The invariants ``check`` runs, in order: (name shown in the report, check).
CHECKS: list[tuple[str, Check]] = []


def invariant(name: str) -> Callable[[Check], Check]:
    """Add a check to ``CHECKS`` under ``name``; checks run in the order they are defined."""

    def register(fn: Check) -> Check:
        CHECKS.append((name, fn))
        return fn

    return register


@dataclass(frozen=True)
class Books:
    """What several checks read, read once: every account's balance summed from the
    journal, and each mission's pledged amount."""

    balances: dict[tuple[str, str], int]
    pledged: dict[int, Any]

    @classmethod
    async def read(cls, conn: AsyncConnection) -> Books:
        balances = await account_balances(conn)
        pledged = dict(
            (await conn.execute(select(pledges.c.mission_id, func.sum(pledges.c.amount))
                                .group_by(pledges.c.mission_id))).all()
        )
        return cls(balances=balances, pledged=pledged)


@invariant("transfers are positive and between two accounts")
async def transfers_are_well_formed(conn: AsyncConnection, books: Books) -> list[str]:
    bad = await conn.execute(
        select(transfers.c.id).where(
            (transfers.c.amount <= 0) | (transfers.c.from_account == transfers.c.to_account)
            | transfers.c.currency.not_in([L.KRW, L.PTS])
        )
    )
    return [f"transfer {r[0]}" for r in bad]


@invariant("postings sum to zero per currency")
async def postings_balance(conn: AsyncConnection, books: Books) -> list[str]:
    per_currency: dict[str, int] = defaultdict(int)
    for (_, currency), amount in books.balances.items():
        per_currency[currency] += amount
    return [f"{c} sums to {s}" for c, s in per_currency.items() if s != 0]


@invariant("accounts hold one currency")
async def one_currency_per_account(conn: AsyncConnection, books: Books) -> list[str]:
    return [f"{a} has {c}" for (a, c) in books.balances if _currency_of(a) != c]


@invariant("wallet balances equal their journal and are not negative")
async def wallets_match_journal(conn: AsyncConnection, books: Books) -> list[str]:
    problems = []
    for w in await conn.execute(select(wallets)):
        for currency, cached, account in (
            (L.KRW, w.cash_balance, L.user_cash(w.user_id)),
            (L.PTS, w.points_balance, L.user_points(w.user_id)),
        ):
            derived = books.balances.get((account, currency), 0)
            if cached != derived or cached < 0:
                problems.append(f"{account} cached {cached} but journal says {derived}")
    return problems


@invariant("escrows hold their pledges until settled")
async def escrows_hold_pledges(conn: AsyncConnection, books: Books) -> list[str]:
    staked = dict(
        (await conn.execute(select(bets.c.mission_id, func.sum(bets.c.points))
                            .group_by(bets.c.mission_id))).all()
    )
    problems = []
    for m in await conn.execute(select(missions.c.id, missions.c.settlement)):
        escrow = books.balances.get((L.escrow(m.id), L.KRW), 0)
        pool = books.balances.get((L.stake_pool(m.id), L.PTS), 0)
        want_escrow = 0 if m.settlement == "settled" else int(books.pledged.get(m.id, 0))
        want_pool = 0 if m.settlement == "settled" else int(staked.get(m.id, 0))
        if escrow != want_escrow:
            problems.append(f"mission {m.id} escrow {escrow}, expected {want_escrow}")
        if pool != want_pool:
            problems.append(f"mission {m.id} stake pool {pool}, expected {want_pool}")
    return problems


@invariant("every pledge is in the journal")
async def pledges_in_journal(conn: AsyncConnection, books: Books) -> list[str]:
    missing = await conn.execute(
        select(pledges.c.id).where(
            ~select(transfers.c.id)
            .where(transfers.c.id
                   == literal(PLEDGE_TRANSFER_PREFIX, String) + cast(pledges.c.id, String))
            .exists()
        )
    )
    return [f"pledge {r[0]}" for r in missing]


@invariant("mission totals equal their pledges")
async def totals_match_pledges(conn: AsyncConnection, books: Books) -> list[str]:
    sharded = dict(
        (await conn.execute(select(mission_totals.c.mission_id, func.sum(mission_totals.c.amount))
                            .group_by(mission_totals.c.mission_id))).all()
    )
    return ([f"mission {m}: total {sharded.get(m, 0)}, pledges {p}"
             for m, p in books.pledged.items() if int(sharded.get(m, 0)) != int(p)]
            + [f"mission {m}: total {t} without pledges"
               for m, t in sharded.items() if m not in books.pledged])


def _is_clearing(account: str) -> bool:
    """A provider's clearing account (``provider:<name>``), not its refunds-pending one."""
    return account.startswith("provider:") and account.count(":") == 1


@invariant("completed top-ups match provider clearing")
async def topups_match_clearing(conn: AsyncConnection, books: Books) -> list[str]:
    """Clearing paid out the completed top-ups and took back the refunds paid and the
    chargebacks standing (not won)."""
    completed = int(await conn.scalar(
        select(func.coalesce(func.sum(topups.c.amount), 0)).where(topups.c.status == "completed")
    ) or 0)
    refunded = int(await conn.scalar(
        select(func.coalesce(func.sum(topup_refunds.c.amount), 0))
        .where(topup_refunds.c.state == "succeeded")) or 0)
    taken = int(await conn.scalar(
        select(func.coalesce(func.sum(chargebacks.c.amount), 0))
        .where(chargebacks.c.state != "won")) or 0)
    clearing = sum(v for (a, _), v in books.balances.items() if _is_clearing(a))
    return [] if completed - refunded - taken == -clearing else [
        f"top-ups {completed} less refunds {refunded} and chargebacks {taken}, "
        f"clearing {clearing}"]


@invariant("each top-up is credited once, and only when completed")
async def topups_credited_once(conn: AsyncConnection, books: Books) -> list[str]:
    """Top-ups against the journal, one by one (real providers complete them later).

    A completed top-up has its one transfer ``topup:<id>`` of its amount, in KRW, from its
    provider's clearing account to the user's cash; a top-up in any other state (pending,
    awaiting a deposit, failed, cancelled, rejected) has none; and every top-up transfer
    belongs to a top-up.
    """
    tid = literal("topup:", String) + cast(topups.c.id, String)
    rows = await conn.execute(
        select(topups.c.id, topups.c.user_id, topups.c.provider, topups.c.amount,
               topups.c.status, transfers.c.amount.label("posted"), transfers.c.currency,
               transfers.c.from_account, transfers.c.to_account)
        .select_from(topups.outerjoin(transfers, transfers.c.id == tid))
    )
    problems = []
    for r in rows:
        if r.status == "completed":
            if r.posted is None:
                problems.append(f"top-up {r.id} completed without its journal transfer")
            elif (r.posted, r.currency, r.from_account, r.to_account) != (
                    r.amount, L.KRW, L.provider_clearing(r.provider), L.user_cash(r.user_id)):
                problems.append(f"top-up {r.id} journal transfer does not match it")
        elif r.posted is not None:
            problems.append(f"top-up {r.id} is {r.status} but was credited")
    orphans = await conn.execute(
        select(transfers.c.id).where(
            transfers.c.kind == L.TransferKind.topup.value,
            ~select(topups.c.id).where(tid == transfers.c.id).exists(),
        )
    )
    problems += [f"transfer {r[0]} has no top-up" for r in orphans]
    return problems


#: Which of a refund's transfers exist, by state: (hold, paid out, reversed).
_REFUND_LEGS = {"pending": (True, False, False), "succeeded": (True, True, False),
                "failed": (True, False, True)}


@invariant("refunds are held, then paid out or reversed, once")
async def refunds_settled_once(conn: AsyncConnection, books: Books) -> list[str]:
    """Refunds against the journal (services/refunds.py): each provider's refunds-pending
    account holds its pending refunds, each refund has exactly the transfers of its state,
    with its amount, and no top-up is refunded past what it credited."""
    rows = list(await conn.execute(
        select(topup_refunds, topups.c.provider, topups.c.amount.label("topup_amount"))
        .join(topups, topups.c.id == topup_refunds.c.topup_id)))
    posted = {r.id: r for r in await conn.execute(
        select(transfers).where(transfers.c.kind.in_([
            L.TransferKind.topup_refund.value, L.TransferKind.topup_refund_paid.value,
            L.TransferKind.topup_refund_reversal.value])))}
    problems = []
    pending: dict[str, int] = defaultdict(int)
    held: dict[int, int] = defaultdict(int)
    credited: dict[int, int] = {}
    for r in rows:
        pending[r.provider] += r.amount if r.state == "pending" else 0
        held[r.topup_id] += r.amount if r.state != "failed" else 0
        hold = L.refunds_pending(r.provider)
        legs = ((f"topup_refund:{r.id}", L.user_cash(r.user_id), hold),
                (f"topup_refund:{r.id}:paid", hold, L.provider_clearing(r.provider)),
                (f"topup_refund:{r.id}:reversed", hold, L.user_cash(r.user_id)))
        for want, (tid, src, dst) in zip(_REFUND_LEGS[r.state], legs, strict=True):
            t = posted.pop(tid, None)
            if (t is not None) != want:
                problems.append(f"refund {r.id} is {r.state} but {tid} is "
                                f"{'present' if t is not None else 'missing'}")
            elif t is not None and (t.amount, t.from_account, t.to_account) != (
                    r.amount, src, dst):
                problems.append(f"refund {r.id}: {tid} does not match it")
        credited[r.topup_id] = r.topup_amount
    problems += [f"top-up {t} refunded {held[t]} of {amount}"
                 for t, amount in credited.items() if held[t] > amount]
    problems += [f"transfer {tid} has no refund" for tid in posted]
    accounts = {a for (a, _) in books.balances if a.endswith(":refunds_pending")}
    for provider in {a.split(":")[1] for a in accounts} | set(pending):
        balance = books.balances.get((L.refunds_pending(provider), L.KRW), 0)
        if balance != pending.get(provider, 0):
            problems.append(f"{L.refunds_pending(provider)} holds {balance}, pending "
                            f"refunds {pending.get(provider, 0)}")
    return problems


@invariant("receivables equal wallet debts")
async def receivables_match_debts(conn: AsyncConnection, books: Books) -> list[str]:
    """A receivable account's journal balance is minus its wallet's ``debt``; none is
    positive, and none exists without a wallet."""
    debts = {L.user_receivable(w.user_id): int(w.debt)
             for w in await conn.execute(select(wallets.c.user_id, wallets.c.debt))}
    owed = {a: -v for (a, _), v in books.balances.items() if a.endswith(":receivable")}
    return [f"{a} owes {owed.get(a, 0)} but the wallet's debt is {debt}"
            for a, debt in sorted(debts.items())
            if owed.get(a, 0) != debt or debt < 0] + [
        f"{a} owes {v} without a wallet" for a, v in sorted(owed.items())
        if a not in debts and v != 0]


@invariant("each chargeback is in the journal once")
async def chargebacks_in_journal(conn: AsyncConnection, books: Books) -> list[str]:
    """Its take (``chargeback:<id>:cash`` and ``:debt``) sums to its amount, from its
    top-up owner's cash or receivable to the provider's clearing; its return
    (``chargeback:<id>:won:…``) sums to the amount if it was won and is absent otherwise;
    every chargeback transfer has its chargeback."""
    kinds = (L.TransferKind.chargeback.value, L.TransferKind.chargeback_won.value)
    posted: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for t in await conn.execute(select(transfers).where(transfers.c.kind.in_(kinds))):
        cb_id, _, rest = t.id.removeprefix("chargeback:").partition(":")
        posted[(cb_id, "won" if rest.startswith("won:") else "take")].append(t)
    problems = []
    rows = await conn.execute(
        select(chargebacks.c.id, chargebacks.c.amount, chargebacks.c.state, topups.c.user_id,
               topups.c.provider)
        .select_from(chargebacks.join(topups, topups.c.id == chargebacks.c.topup_id)))
    for r in rows:
        own = {L.user_cash(r.user_id), L.user_receivable(r.user_id)}
        clearing = L.provider_clearing(r.provider)
        take = posted.pop((str(r.id), "take"), [])
        back = posted.pop((str(r.id), "won"), [])
        if sum(t.amount for t in take) != r.amount or any(
                t.from_account not in own or t.to_account != clearing for t in take):
            problems.append(f"chargeback {r.id} took {sum(t.amount for t in take)} "
                            f"of {r.amount}, or not from its owner to {clearing}")
        want_back = r.amount if r.state == "won" else 0
        if sum(t.amount for t in back) != want_back or any(
                t.to_account not in own or t.from_account != clearing for t in back):
            problems.append(f"chargeback {r.id} ({r.state}) gave back "
                            f"{sum(t.amount for t in back)}, expected {want_back}")
    problems += [f"transfer {t.id} has no chargeback" for ts in posted.values() for t in ts]
    totals = await conn.execute(
        select(topups.c.id, topups.c.amount,
               select(func.coalesce(func.sum(chargebacks.c.amount), 0))
               .where(chargebacks.c.topup_id == topups.c.id, chargebacks.c.state != "won")
               .scalar_subquery().label("charged"),
               select(func.coalesce(func.sum(topup_refunds.c.amount), 0))
               .where(topup_refunds.c.topup_id == topups.c.id,
                      topup_refunds.c.state != "failed")
               .scalar_subquery().label("refunded"))
        .where(select(chargebacks.c.id).where(chargebacks.c.topup_id == topups.c.id).exists()))
    problems += [f"top-up {r.id} of {r.amount} charged back {r.charged} and refunded "
                 f"{r.refunded}" for r in totals if r.charged + r.refunded > r.amount]
    return problems


@invariant("settled missions email every backer and the streamer once")
async def result_emails_queued(conn: AsyncConnection, books: Books) -> list[str]:
    expected_jobs = await conn.execute(
        select(missions.c.id, func.count(func.distinct(pledges.c.user_id)))
        .select_from(missions.outerjoin(pledges, pledges.c.mission_id == missions.c.id))
        .where(missions.c.settlement == "settled")
        .group_by(missions.c.id)
    )
    jobs: dict[int, int] = dict(
        (await conn.execute(select(email_jobs.c.mission_id, func.count())
                            .group_by(email_jobs.c.mission_id))).all()
    )
    return [f"mission {mid}: {jobs.get(mid, 0)} jobs for {n} backers"
            for mid, n in expected_jobs if jobs.get(mid, 0) != n + 1]


async def check(conn: AsyncConnection) -> Report:
    """Run every check in ``CHECKS`` and report each by name."""
    report = Report()
    books = await Books.read(conn)
    for name, run in CHECKS:
        report.check(name, await run(conn, books))
    return report


async def check_measured(conn: AsyncConnection) -> Report:
    """``check``, with its result, duration and time kept in the reconcile metrics.

    On PostgreSQL it reads the whole journal, so it may take longer than the pool's
    ``DB_STATEMENT_TIMEOUT_MS``: its transaction gets ``RECONCILE_STATEMENT_TIMEOUT``.
    """
    started = time.monotonic()
    await dialect_of(conn).set_local(conn, "statement_timeout", f"'{RECONCILE_STATEMENT_TIMEOUT}'")
    report = await check(conn)
    metrics.RECONCILE_DURATION.set(time.monotonic() - started)
    metrics.RECONCILE_OK.set(1 if report.ok else 0)
    metrics.RECONCILE_VIOLATIONS.set(len(report.failures))
    metrics.RECONCILE_LAST_RUN.set(time.time())
    log.info("reconcile.finished", ok=report.ok, problems=len(report.failures),
             seconds=round(time.monotonic() - started, 3))
    return report




# The payout invariants register themselves, after the ones above.
from missionlink.services import reconcile_payouts  # noqa: E402, F401
