"""Prometheus metrics shared by the API and the worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "missionlink_outbox_events_total", "Outbox events handled", ["topic", "outcome"]
)
OUTBOX_AGE = Gauge(
    "missionlink_outbox_oldest_age_seconds", "Age of the oldest unprocessed outbox event"
)
BROKER_MISSED = Counter(
    "missionlink_broker_missed_after_commit_total",
    "Committed writes whose read-model invalidation or worker wake-up the broker did not "
    "take (the read model's TTL and the worker's polling cover them)",
)
DEPENDENCY_ERRORS = Counter(
    "missionlink_http_dependency_errors_total",
    "Requests answered 503 service-unavailable because a database or the broker did not "
    "answer; the log line has the stack",
    ["route"],
)
UNHANDLED_ERRORS = Counter(
    "missionlink_http_unhandled_errors_total",
    "Requests that ended in an exception no handler knew (answered 500 internal-error, "
    "or cut short when the response had started); the log line has the stack",
    ["route"],
)
REQUESTS = Histogram(
    "missionlink_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EMAILS = Counter(
    "missionlink_emails_total",
    "Result email send attempts: sent, retried (failed, will be tried again) or dead "
    "(failed WORKER_MAX_ATTEMPTS times, listed by `missionlink dead-letters list`)",
    ["outcome"],
)
for _outcome in ("sent", "retried", "dead"):
    EMAILS.labels(_outcome)  # present at 0, so an alert on "dead" has a series to watch
SSE_OPEN = Gauge("missionlink_sse_streams_open", "Live event streams open in this process")
SSE_REFUSED = Counter(
    "missionlink_sse_streams_refused_total",
    "Live event streams refused by a cap: token, address (429) or process (503)",
    ["cap"],
)
for _cap in ("token", "address", "process"):
    SSE_REFUSED.labels(_cap)
SLOW_CLIENTS = Counter(
    "missionlink_http_slow_clients_total",
    "Connections closed because the client was too slow: headers or body not received "
    "within REQUEST_READ_TIMEOUT_SECONDS, or a response not read for "
    "RESPONSE_WRITE_TIMEOUT_SECONDS",
    ["phase"],
)
for _phase in ("headers", "body", "write"):
    SLOW_CLIENTS.labels(_phase)
READ_CACHE_ENTRIES = Gauge(
    "missionlink_read_cache_entries",
    "Public reads held in this process's read model (bounded by READ_CACHE_MAX_ENTRIES)",
)
READ_CACHE_BYTES = Gauge(
    "missionlink_read_cache_body_bytes",
    "Bytes of the encoded bodies held in this process's read model",
)

# -- workers: backlog, dead letters, settlement ------------------------------------------
OUTBOX_BACKLOG = Gauge(
    "missionlink_outbox_backlog", "Outbox events not processed yet (sampled by the worker)"
)
DEAD_LETTERS = Gauge(
    "missionlink_dead_letters",
    "Dead letters not replayed yet: events whose handlers kept failing, and result emails "
    "the mail server never took (`missionlink dead-letters list`)",
    ["kind"],
)
SETTLEMENT_LAG = Histogram(
    "missionlink_settlement_lag_seconds",
    "From a mission's end (succeeded, failed, rejected, expired or cancelled) to its "
    "settlement",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)

# -- database pools -----------------------------------------------------------------------
DB_POOL = Gauge(
    "missionlink_db_pool_connections",
    "Connections of this process's pool per database: in_use (checked out), idle "
    "(open, waiting in the pool) and capacity (DB_POOL_SIZE)",
    ["database", "state"],
)


def watch_pool(database: str, *pools: Any) -> None:
    """Report ``pools`` (SQLAlchemy queue pools; on SQLite a database has a write and a
    read pool) together as ``database`` at each scrape."""
    unique = list({id(pool): pool for pool in pools}.values())
    for state, read in (("in_use", "checkedout"), ("idle", "checkedin"), ("capacity", "size")):
        methods = [m for m in (getattr(pool, read, None) for pool in unique) if callable(m)]
        if methods:
            DB_POOL.labels(database, state).set_function(_summed(methods))


def _summed(methods: list[Callable[[], int]]) -> Callable[[], float]:
    return lambda: float(sum(method() for method in methods))

# -- live streams and limits --------------------------------------------------------------
SSE_EVENTS = Counter(
    "missionlink_sse_events_sent_total",
    "Events written to live streams: the overlay, a mission's or a channel's public stream",
    ["stream"],
)
for _stream in ("overlay", "mission", "channel"):
    SSE_EVENTS.labels(_stream)
RATE_LIMITED = Counter(
    "missionlink_rate_limited_total",
    "Requests refused 429 by a rate limit: signup, login, pledge (pledges and proposals), "
    "post, stream (live streams per token or address), other",
    ["limit"],
)
RATE_LIMITS = ("signup", "login", "pledge", "post", "stream", "other")
for _limit in RATE_LIMITS:
    RATE_LIMITED.labels(_limit)

# -- business (counted by the worker from the outbox events, after they commit) ----------
PLEDGES = Counter("missionlink_pledges_total", "Pledges made (a proposal's first one included)")
PLEDGED_KRW = Counter("missionlink_pledged_krw_total", "KRW pledged into escrow")
BETS = Counter("missionlink_bets_total", "Prediction bets placed")
BET_POINTS = Counter("missionlink_bet_points_total", "Points staked on predictions")
MISSIONS_CREATED = Counter("missionlink_missions_created_total", "Missions proposed")
SETTLEMENTS = Counter(
    "missionlink_settlements_total",
    "Missions settled: payout (succeeded) or refund (failed, rejected, expired, cancelled)",
    ["outcome"],
)
for _outcome in ("payout", "refund"):
    SETTLEMENTS.labels(_outcome)
PAID_OUT_KRW = Counter("missionlink_paid_out_krw_total", "KRW paid out to streamers")
FEES_KRW = Counter("missionlink_fees_krw_total", "KRW of platform fees taken at payouts")
REFUNDED_KRW = Counter("missionlink_refunded_krw_total", "KRW refunded to backers")
MISSIONS = Gauge(
    "missionlink_missions", "Missions per status (sampled by the worker)", ["status"]
)
ESCROW_KRW = Gauge(
    "missionlink_escrow_krw", "KRW held in escrow now: pledged to missions not settled yet"
)

# -- reconcile ----------------------------------------------------------------------------
RECONCILE_OK = Gauge(
    "missionlink_reconcile_ok", "1 when the last reconcile found every invariant holding"
)
RECONCILE_LAST_RUN = Gauge(
    "missionlink_reconcile_last_run_timestamp_seconds",
    "Unix time the last reconcile of this process finished",
)
RECONCILE_DURATION = Gauge(
    "missionlink_reconcile_duration_seconds", "How long the last reconcile took"
)
RECONCILE_VIOLATIONS = Gauge(
    "missionlink_reconcile_violations", "Problems the last reconcile found (0 when ok)"
)

CLOCK_OFFSET = Gauge(
    "missionlink_clock_offset_seconds",
    "The database server's clock minus this process's own, as last measured (PostgreSQL); "
    "deadlines are judged by the database's",
)
