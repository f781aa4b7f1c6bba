"""Prometheus metrics shared by the API and the worker."""

from __future__ import annotations

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
