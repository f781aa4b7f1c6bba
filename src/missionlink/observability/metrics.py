"""Prometheus metrics shared by the API and the worker."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "missionlink_outbox_events_total", "Outbox events handled", ["topic", "outcome"]
)
OUTBOX_AGE = Gauge(
    "missionlink_outbox_oldest_age_seconds", "Age of the oldest unprocessed outbox event"
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
