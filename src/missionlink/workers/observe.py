"""What the worker tells the metrics: gauges sampled from the database, business counters
from the outbox events it has committed, and the scheduled reconcile."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import (
    dead_letters,
    email_jobs,
    mission_totals,
    missions,
    outbox,
    transfers,
)
from missionlink.bootstrap import Container
from missionlink.domain import events as topics
from missionlink.domain import ledger as L
from missionlink.domain.missions import Status
from missionlink.observability import metrics
from missionlink.services.reconcile import check_measured

#: Database gauges are sampled at most this often (each sample is a few aggregate reads).
SAMPLE_SECONDS = 5.0


async def sample(conn: AsyncConnection, now: Any) -> None:
    """Outbox backlog and age, dead letters, missions per status, money in escrow."""
    backlog, oldest = (await conn.execute(
        select(func.count(), func.min(outbox.c.created_at))
        .where(outbox.c.processed_at.is_(None))
    )).one()
    metrics.OUTBOX_BACKLOG.set(backlog)
    metrics.OUTBOX_AGE.set(max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
    metrics.DEAD_LETTERS.labels("event").set(await conn.scalar(
        select(func.count()).select_from(dead_letters)
        .where(dead_letters.c.replayed_at.is_(None))) or 0)
    metrics.DEAD_LETTERS.labels("email").set(await conn.scalar(
        select(func.count()).select_from(email_jobs)
        .where(email_jobs.c.status == "failed")) or 0)
    per_status = {status: int(n) for status, n in await conn.execute(
        select(missions.c.status, func.count()).group_by(missions.c.status))}
    for status in Status:
        metrics.MISSIONS.labels(status.value).set(per_status.get(status.value, 0))
    escrow = await conn.scalar(
        select(func.coalesce(func.sum(mission_totals.c.amount), 0))
        .select_from(mission_totals.join(missions, missions.c.id == mission_totals.c.mission_id))
        .where(or_(missions.c.settlement.is_(None), missions.c.settlement != "settled")))
    metrics.ESCROW_KRW.set(int(escrow or 0))


async def tally(c: Container, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Business counters from events whose handlers have committed (each counted by the
    worker that handled it; a worker killed between commit and count undercounts)."""
    settled: list[int] = []
    for topic, payload in events:
        if topic == topics.PLEDGE_CREATED:
            metrics.PLEDGES.inc()
            metrics.PLEDGED_KRW.inc(int(payload.get("amount", 0)))
        elif topic == topics.BET_PLACED:
            metrics.BETS.inc()
            metrics.BET_POINTS.inc(int(payload.get("points", 0)))
        elif topic == topics.MISSION_CREATED:
            metrics.MISSIONS_CREATED.inc()
        elif topic == topics.MISSION_SETTLED:
            settled.append(int(payload["mission_id"]))
    if not settled:
        return
    async with c.core_db.read() as conn:
        rows = (await conn.execute(
            select(missions.c.id, missions.c.status, missions.c.ended_at, missions.c.settled_at)
            .where(missions.c.id.in_(settled)))).all()
        moved = (await conn.execute(
            select(transfers.c.kind, func.sum(transfers.c.amount))
            .where(transfers.c.mission_id.in_(settled), transfers.c.currency == L.KRW,
                   transfers.c.kind.in_([L.TransferKind.payout.value, L.TransferKind.fee.value,
                                         L.TransferKind.refund.value]))
            .group_by(transfers.c.kind))).all()
    for row in rows:
        metrics.SETTLEMENTS.labels(
            "payout" if row.status == Status.succeeded.value else "refund").inc()
        if row.ended_at is not None and row.settled_at is not None:
            metrics.SETTLEMENT_LAG.observe(
                max((row.settled_at - row.ended_at).total_seconds(), 0.0))
    amounts = {kind: int(total or 0) for kind, total in moved}
    metrics.PAID_OUT_KRW.inc(amounts.get(L.TransferKind.payout.value, 0))
    metrics.FEES_KRW.inc(amounts.get(L.TransferKind.fee.value, 0))
    metrics.REFUNDED_KRW.inc(amounts.get(L.TransferKind.refund.value, 0))


class Observer:
    """Runs ``sample`` every ``SAMPLE_SECONDS`` and the reconcile every
    ``RECONCILE_INTERVAL_SECONDS`` (0: never), the first of each on the first pass."""

    def __init__(self, c: Container) -> None:
        self.c = c
        self._sampled = float("-inf")
        self._reconciled = float("-inf")

    async def __call__(self) -> None:
        clock = time.monotonic()
        if clock - self._sampled >= SAMPLE_SECONDS:
            self._sampled = clock
            async with self.c.core_db.read() as conn:
                await sample(conn, self.c.clock.now())
        interval = self.c.settings.reconcile_interval_seconds
        if interval and clock - self._reconciled >= interval:
            self._reconciled = clock
            async with self.c.core_db.read() as conn:
                await check_measured(conn)
