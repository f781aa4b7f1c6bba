"""Send queued result emails; each send is recorded under its stable Message-ID.

Every line logged for a job names its ``job``, ``mission_id`` and ``user_id`` (never the
address): the settlement that queued it is logged under the id of the request that ended
the mission (``outbox.handled`` with the same ``mission_id``), which links an email back
to that request."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import email_jobs, missions, transfers
from missionlink.adapters.db.identity_tables import users
from missionlink.adapters.db.sql import dialect_of
from missionlink.adapters.email.senders import MailerUnavailable
from missionlink.bootstrap import Container
from missionlink.domain import ledger as L
from missionlink.observability import metrics, tracing
from missionlink.services.notifications import Recipient, Statement, build_message

log = structlog.get_logger(__name__)
RECORD_EVERY = 25


async def _claim(conn: AsyncConnection, now: datetime, limit: int,
                 lease: timedelta) -> list[Any]:
    """Queued emails whose lease is free, leased for ``lease`` (a worker killed mid-batch
    leaves them to the next worker once it runs out)."""
    stmt = (
        select(email_jobs)
        .where(
            email_jobs.c.status == "queued",
            or_(email_jobs.c.lease_until.is_(None), email_jobs.c.lease_until <= now),
        )
        .order_by(email_jobs.c.id)
        .limit(limit)
    )
    rows = list(await conn.execute(dialect_of(conn).claim(stmt)))
    if rows:
        await conn.execute(
            update(email_jobs)
            .where(email_jobs.c.id.in_([r.id for r in rows]))
            .values(lease_until=now + lease, attempts=email_jobs.c.attempts + 1)
        )
    return rows


async def _statements(
    conn: AsyncConnection, mission_id: int, user_ids: list[int]
) -> dict[int, Statement]:
    accounts = {L.user_cash(u): u for u in user_ids} | {L.user_points(u): u for u in user_ids}
    rows = await conn.execute(
        select(transfers.c.kind, transfers.c.from_account, transfers.c.to_account,
               transfers.c.amount)
        .where(
            or_(transfers.c.from_account.in_(accounts), transfers.c.to_account.in_(accounts)),
            transfers.c.mission_id == mission_id,
        )
    )
    sums: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for kind, src, dst, amount in rows:
        user = accounts.get(dst) if dst in accounts else accounts.get(src)
        if user is not None:
            sums[user][kind] += amount
    fees = int(
        await conn.scalar(
            select(transfers.c.amount).where(transfers.c.id == f"fee:{mission_id}")
        )
        or 0
    )
    return {
        u: Statement(
            pledged=s["pledge"], refunded=s["refund"], payout=s["payout"], fee=fees,
            points_earned=s["pledge_points"], staked=s["bet"],
            stake_returned=s["bet_payout"] + s["bet_refund"],
        )
        for u, s in ((u, sums[u]) for u in user_ids)
    }


async def send_batch(container: Container, limit: int = 200) -> int:
    """Send up to ``limit`` queued emails; returns how many were sent."""
    now = container.clock.now()
    async with container.core_db.begin() as conn:
        jobs = await _claim(conn, now, limit,
                            timedelta(seconds=container.settings.email_lease_seconds))
    if not jobs:
        return 0
    async with container.core_db.read() as conn:
        mission_rows = {
            r.id: r
            for r in await conn.execute(
                select(missions.c.id, missions.c.title, missions.c.status,
                       missions.c.reject_reason).where(
                    missions.c.id.in_({j.mission_id for j in jobs})
                )
            )
        }
        statements: dict[tuple[int, int], Statement] = {}
        by_mission: dict[int, list[int]] = defaultdict(list)
        for j in jobs:
            by_mission[j.mission_id].append(j.user_id)
        for mission_id, uids in by_mission.items():
            for uid, st in (await _statements(conn, mission_id, uids)).items():
                statements[(mission_id, uid)] = st
    async with container.identity_db.read() as conn:
        people = {
            r.id: Recipient(r.id, r.email, r.display_name, r.language)
            for r in await conn.execute(
                select(users.c.id, users.c.email, users.c.display_name, users.c.language).where(
                    users.c.id.in_({j.user_id for j in jobs})
                )
            )
        }
    sent: list[int] = []
    failed: list[Failure] = []
    max_attempts = container.settings.worker_max_attempts
    for index, job in enumerate(jobs):
        person = people.get(job.user_id)
        mission = mission_rows.get(job.mission_id)
        if person is None or mission is None:
            # Nothing a retry could fix: dead-letter at once for an operator to look at.
            failed.append(_fail(job, "recipient or mission not found", max_attempts, dead=True))
            continue
        message = build_message(
            sender=container.settings.smtp_from, recipient=person, message_id=job.message_id,
            mission_title=mission.title, status=mission.status, role=job.role,
            statement=statements.get((job.mission_id, job.user_id), Statement()),
            now=container.clock.now(), reject_reason=mission.reject_reason,
        )
        try:
            with tracing.span("email.send", **{"missionlink.mission_id": job.mission_id}):
                await container.mailer.send(message)
        except MailerUnavailable as exc:
            # The server is unreachable for everyone: only this job counts the attempt. The
            # rest of the batch was never tried, so it gets its claimed attempt back and
            # waits out the same backoff rather than each its own connection timeout (an
            # outage must not dead-letter mail that never reached the server).
            error = f"{type(exc).__name__}: {exc}"
            failure = _fail(job, error, max_attempts)
            failed.append(failure)
            untried = [j.id for j in jobs[index + 1:]]
            if untried:
                log.warning(
                    "email.deferred", jobs=len(untried), after_job=job.id, error=error[:2000],
                )
            await _record(container, sent[len(sent) - len(sent) % RECORD_EVERY:], failed,
                          deferred=untried, defer_attempts=failure.attempts)
            return len(sent)
        except Exception as exc:
            error = _redact(f"{type(exc).__name__}: {exc}", person.email)
            failed.append(_fail(job, error, max_attempts))
            continue
        sent.append(job.id)
        log.debug("email.sent", job=job.id, mission_id=job.mission_id, user_id=job.user_id,
                  role=job.role)
        if len(sent) % RECORD_EVERY == 0:
            await _record(container, sent[-RECORD_EVERY:], [])
    await _record(container, sent[len(sent) - len(sent) % RECORD_EVERY:], failed)
    log.info("email.batch_done", sent=len(sent), failed=len(failed),
             missions=sorted(by_mission))
    return len(sent)


@dataclass(frozen=True)
class Failure:
    job_id: int
    error: str
    attempts: int
    dead: bool


def _redact(error: str, address: str) -> str:
    """Servers echo the recipient in refusals; logs and dead letters name the user id."""
    if not address:
        return error
    return re.sub(re.escape(address), "<recipient>", error, flags=re.IGNORECASE)


def _fail(job: Any, error: str, max_attempts: int, *, dead: bool = False) -> Failure:
    attempts = job.attempts + 1  # the claim counted this attempt; ``job`` predates it
    failure = Failure(job.id, error[:2000], attempts, dead or attempts >= max_attempts)
    log.error(
        "email.dead_lettered" if failure.dead else "email.send_failed",
        job=job.id, message_id=job.message_id, user_id=job.user_id,
        mission_id=job.mission_id, attempts=attempts, max_attempts=max_attempts,
        error=failure.error,
    )
    return failure


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2 ** min(attempts, 8)))


async def _record(
    container: Container, sent: list[int], failed: list[Failure], *,
    deferred: list[int] | None = None, defer_attempts: int = 0,
) -> None:
    """``deferred`` jobs were claimed but never tried: their attempt is given back and they
    wait out the backoff of ``defer_attempts`` (the failed job's), neither retried nor dead."""
    now = container.clock.now()
    async with container.core_db.begin() as conn:
        if sent:
            await conn.execute(
                update(email_jobs)
                .where(email_jobs.c.id.in_(sent))
                .values(status="sent", sent_at=now, lease_until=None)
            )
        for f in failed:
            backoff = _backoff(f.attempts)
            await conn.execute(
                update(email_jobs)
                .where(email_jobs.c.id == f.job_id)
                .values(
                    status="failed" if f.dead else "queued",
                    last_error=f.error,
                    lease_until=None if f.dead else now + backoff,
                )
            )
        if deferred:
            await conn.execute(
                update(email_jobs)
                .where(email_jobs.c.id.in_(deferred))
                .values(
                    status="queued",
                    attempts=email_jobs.c.attempts - 1,
                    lease_until=now + _backoff(defer_attempts),
                )
            )
    # Counted once recorded, so the counters agree with what the table says.
    if sent:
        metrics.EMAILS.labels("sent").inc(len(sent))
    dead = sum(f.dead for f in failed)
    if dead:
        metrics.EMAILS.labels("dead").inc(dead)
    if len(failed) - dead:
        metrics.EMAILS.labels("retried").inc(len(failed) - dead)
