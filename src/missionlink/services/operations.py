"""The operations page's read side: what an operator checks first, without Prometheus.

Two sources, said apart in the answer:

- **This process's metrics** (the prometheus_client collectors of ``observability.metrics``):
  requests and their errors, result emails sent by this process, the last reconcile this
  process ran. With several API processes each has its own, so these are one replica's
  figures; in the embedded default (one process running the worker) they are the whole
  service's.
- **The core database**, so they are the same whichever replica answers: the outbox
  backlog and the age of its oldest event, dead letters (listed as
  ``missionlink dead-letters list`` does), result emails by status, missions by status and
  the KRW held in escrow.

``replay`` does what ``missionlink dead-letters replay`` does, inside the caller's
transaction (so an Idempotency-Key is stored with it), and says whether anything changed:
replaying twice is harmless.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import REGISTRY
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import (
    dead_letters,
    email_jobs,
    mission_totals,
    missions,
    outbox,
)
from missionlink.domain.errors import NotFound
from missionlink.domain.missions import OPEN, Status
from missionlink.domain.timestamps import iso
from missionlink.observability import metrics

Kind = Literal["event", "email"]
_ID = re.compile(r"(?:(event|email):)?([0-9]{1,18})", re.ASCII)


@dataclass(frozen=True)
class DeadLetterId:
    kind: Kind
    number: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.number}"


def parse_id(text: str) -> DeadLetterId:
    """``event:12``, ``email:7`` or a bare ``12`` (a bare number is an event)."""
    match = _ID.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a dead letter id: {text!r} (expected event:N or email:N)")
    kind: Kind = "email" if match.group(1) == "email" else "event"
    return DeadLetterId(kind, int(match.group(2)))


#: The route of the operations read itself: its polling is left out of the request figures.
OPERATIONS_ROUTE = "/api/v1/admin/operations"
#: Request rates are measured over about this many seconds (between reads of the page).
RATE_WINDOW_SECONDS = 60.0
#: The dead letters listed (newest first); the counts cover all of them.
DEAD_LETTER_LIMIT = 50
_ERROR_TEXT_MAX = 500


# -- this process's metrics ---------------------------------------------------------------

@dataclass(frozen=True)
class _Counts:
    at: float
    total: int
    client_errors: int
    server_errors: int
    seconds: float


def _request_counts() -> _Counts:
    """Requests so far, from ``missionlink_http_request_seconds`` (all routes but this one)."""
    total = client = server = 0
    seconds = 0.0
    for family in metrics.REQUESTS.collect():
        for sample in family.samples:
            if sample.labels.get("route") == OPERATIONS_ROUTE:
                continue
            if sample.name.endswith("_count"):
                n = int(sample.value)
                total += n
                status = sample.labels.get("status", "")
                client += n if status.startswith("4") else 0
                server += n if status.startswith("5") else 0
            elif sample.name.endswith("_sum"):
                seconds += sample.value
    return _Counts(time.monotonic(), total, client, server, seconds)


class _RateWindow:
    """Counts seen at earlier reads, to turn totals into rates over about a minute."""

    def __init__(self) -> None:
        self._seen: deque[_Counts] = deque(maxlen=512)

    def rates(self, now: _Counts) -> tuple[float | None, _Counts | None]:
        while self._seen and now.at - self._seen[0].at > RATE_WINDOW_SECONDS:
            if len(self._seen) > 1 and now.at - self._seen[1].at >= RATE_WINDOW_SECONDS:
                self._seen.popleft()
            else:
                break
        base = next((c for c in self._seen if now.at - c.at >= 1.0), None)
        self._seen.append(now)
        return (now.at - base.at, base) if base else (None, None)


_window = _RateWindow()


def _sample(name: str, labels: dict[str, str] | None = None) -> float | None:
    return REGISTRY.get_sample_value(name, labels or {})


def _process_started() -> float | None:
    """This process's start (Unix time), from the process collector where there is one."""
    return _sample("process_start_time_seconds")


def process_figures(*, worker_in_process: bool, reconcile_interval: int) -> dict[str, Any]:
    counts = _request_counts()
    window, base = _window.rates(counts)
    if base is None:
        started = _process_started()
        if started is not None and counts.total:
            window = max(time.time() - started, 1.0)
            base = _Counts(0.0, 0, 0, 0, 0.0)
    per_second: dict[str, float | None] = {"rate": None, "client_errors": None,
                                           "server_errors": None}
    if window and base is not None:
        per_second = {
            "rate": round((counts.total - base.total) / window, 3),
            "client_errors": round((counts.client_errors - base.client_errors) / window, 3),
            "server_errors": round((counts.server_errors - base.server_errors) / window, 3),
        }
    last_run = _sample("missionlink_reconcile_last_run_timestamp_seconds") or 0.0
    ran = last_run > 0
    return {
        "requests": {
            "total": counts.total,
            "client_errors": counts.client_errors,
            "server_errors": counts.server_errors,
            "mean_seconds": round(counts.seconds / counts.total, 6) if counts.total else None,
            "window_seconds": round(window, 1) if window else None,
            "per_second": per_second["rate"],
            "client_errors_per_second": per_second["client_errors"],
            "server_errors_per_second": per_second["server_errors"],
        },
        "emails": {outcome: int(_sample("missionlink_emails_total", {"outcome": outcome}) or 0)
                   for outcome in ("sent", "retried", "dead")},
        "reconcile": {
            "ran": ran,
            "ok": bool(_sample("missionlink_reconcile_ok")) if ran else None,
            "finished_at": iso(datetime.fromtimestamp(last_run, UTC)) if ran else None,
            "duration_seconds": _sample("missionlink_reconcile_duration_seconds") if ran else None,
            "violations": int(_sample("missionlink_reconcile_violations") or 0) if ran else None,
            "interval_seconds": reconcile_interval if worker_in_process else None,
        },
        "worker_in_process": worker_in_process,
    }


# -- the database ---------------------------------------------------------------------------

async def database_figures(conn: AsyncConnection, now: datetime) -> dict[str, Any]:
    backlog, oldest = (await conn.execute(
        select(func.count(), func.min(outbox.c.created_at))
        .where(outbox.c.processed_at.is_(None))
    )).one()
    per_status = {str(s): int(n) for s, n in await conn.execute(
        select(missions.c.status, func.count()).group_by(missions.c.status))}
    by_status = {status.value: per_status.get(status.value, 0) for status in Status}
    unsettled = await conn.scalar(
        select(func.count()).select_from(missions)
        .where(missions.c.status.not_in([s.value for s in OPEN]),
               or_(missions.c.settlement.is_(None), missions.c.settlement != "settled")))
    escrow = await conn.scalar(
        select(func.coalesce(func.sum(mission_totals.c.amount), 0))
        .select_from(mission_totals.join(missions, missions.c.id == mission_totals.c.mission_id))
        .where(or_(missions.c.settlement.is_(None), missions.c.settlement != "settled")))
    emails = {str(s): int(n) for s, n in await conn.execute(
        select(email_jobs.c.status, func.count()).group_by(email_jobs.c.status))}
    return {
        "outbox": {
            "backlog": int(backlog),
            "oldest_age_seconds": round(max((now - oldest).total_seconds(), 0.0), 3)
            if oldest else 0.0,
        },
        "emails": {status: emails.get(status, 0) for status in ("queued", "sent", "failed")},
        "missions": {
            "open": sum(by_status[s.value] for s in OPEN),
            "awaiting_settlement": int(unsettled or 0),
            "by_status": by_status,
        },
        "escrow_krw": int(escrow or 0),
        "dead_letters": await _dead_letters(conn),
    }


def _mission_of(payload: Any) -> int | None:
    value = payload.get("mission_id") if isinstance(payload, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error(text: str | None) -> str:
    return " ".join((text or "").split())[:_ERROR_TEXT_MAX]


async def _dead_letters(conn: AsyncConnection) -> dict[str, Any]:
    """Dead letters not replayed yet, newest first; an email names its user id, never the
    address (as ``missionlink dead-letters list``)."""
    waiting = dead_letters.c.replayed_at.is_(None)
    failed = email_jobs.c.status == "failed"
    events_n = await conn.scalar(select(func.count()).select_from(dead_letters).where(waiting))
    emails_n = await conn.scalar(select(func.count()).select_from(email_jobs).where(failed))
    events = await conn.execute(
        select(dead_letters.c.id, dead_letters.c.event_id, dead_letters.c.topic,
               dead_letters.c.attempts, dead_letters.c.failed_at, dead_letters.c.error,
               dead_letters.c.payload)
        .where(waiting).order_by(dead_letters.c.id.desc()).limit(DEAD_LETTER_LIMIT))
    emails = await conn.execute(
        select(email_jobs.c.id, email_jobs.c.mission_id, email_jobs.c.user_id,
               email_jobs.c.role, email_jobs.c.attempts, email_jobs.c.created_at,
               email_jobs.c.last_error)
        .where(failed).order_by(email_jobs.c.id.desc()).limit(DEAD_LETTER_LIMIT))
    items: list[dict[str, Any]] = [
        {"id": str(DeadLetterId("event", r.id)), "kind": "event", "topic": r.topic,
         "event_id": r.event_id, "mission_id": _mission_of(r.payload), "user_id": None,
         "role": None,
         "attempts": r.attempts, "at": iso(r.failed_at), "error": _error(r.error)}
        for r in events
    ]
    items += [
        {"id": str(DeadLetterId("email", r.id)), "kind": "email", "topic": None,
         "event_id": None, "mission_id": r.mission_id, "user_id": r.user_id, "role": r.role,
         "attempts": r.attempts, "at": iso(r.created_at), "error": _error(r.last_error)}
        for r in emails
    ]
    return {"events": int(events_n or 0), "emails": int(emails_n or 0), "items": items,
            "limit": DEAD_LETTER_LIMIT}


async def snapshot(conn: AsyncConnection, *, now: datetime, worker_in_process: bool,
                   reconcile_interval: int) -> dict[str, Any]:
    """Everything the operations page shows."""
    figures = await database_figures(conn, now)
    return {
        "generated_at": iso(now),
        "process": process_figures(worker_in_process=worker_in_process,
                                   reconcile_interval=reconcile_interval),
        **figures,
    }


# -- replay -------------------------------------------------------------------------------

async def replay(conn: AsyncConnection, dead_letter: DeadLetterId, now: datetime
                 ) -> dict[str, Any]:
    """Queue a dead letter again (``missionlink dead-letters replay``'s effect).

    An event goes back to the outbox with fresh attempts (handlers that already succeeded
    for it stay skipped); a failed email is queued again under the same Message-ID.
    ``replayed`` is false when it was replayed already (nothing changes); an id that names
    no dead letter is 404.
    """
    if dead_letter.kind == "email":
        result = await conn.execute(
            update(email_jobs)
            .where(email_jobs.c.id == dead_letter.number, email_jobs.c.status == "failed")
            .values(status="queued", attempts=0, lease_until=None))
        if not result.rowcount:
            status = await conn.scalar(
                select(email_jobs.c.status).where(email_jobs.c.id == dead_letter.number))
            if status is None:
                raise NotFound(f"no dead letter {dead_letter}")
            return {"id": str(dead_letter), "kind": "email", "replayed": False,
                    "status": str(status)}
        return {"id": str(dead_letter), "kind": "email", "replayed": True, "status": "queued"}
    row = (await conn.execute(
        update(dead_letters)
        .where(dead_letters.c.id == dead_letter.number, dead_letters.c.replayed_at.is_(None))
        .values(replayed_at=now)
        .returning(dead_letters.c.event_id))).first()
    if row is None:
        known = await conn.scalar(
            select(dead_letters.c.id).where(dead_letters.c.id == dead_letter.number))
        if known is None:
            raise NotFound(f"no dead letter {dead_letter}")
        return {"id": str(dead_letter), "kind": "event", "replayed": False,
                "status": "replayed"}
    await conn.execute(
        update(outbox).where(outbox.c.id == row.event_id)
        .values(processed_at=None, attempts=0, available_at=now, last_error=None))
    return {"id": str(dead_letter), "kind": "event", "replayed": True, "status": "queued"}
