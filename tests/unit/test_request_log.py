"""The request log: every request counted, cached-read lines sampled but adding up."""

from __future__ import annotations

import time

import pytest
import structlog

from missionlink.observability import http
from missionlink.observability.metrics import REQUESTS

ROUTE = "/api/v1/test-sampled/{thing}"


def _count(status: int) -> float:
    child = REQUESTS.labels(method="GET", route=ROUTE, status=str(status))
    return float(sum(bucket.get() for bucket in child._buckets))


def _lines(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == "request" and e["route"] == ROUTE]


def test_one_line_in_every_n_stands_for_the_requests_since_the_last() -> None:
    sampled = http.SampledRequestLog(every=3)
    before = _count(200)
    with structlog.testing.capture_logs() as logs:
        for n in range(7):
            sampled.record("GET", ROUTE, 200, time.perf_counter(), f"id{n}")
    lines = _lines(logs)
    assert [(e["request_id"], e["count"]) for e in lines] == [("id2", 3), ("id5", 3)]
    assert _count(200) == before + 7  # the metric counts every one


def test_a_slow_or_failed_request_is_logged_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    sampled = http.SampledRequestLog(every=100)
    with structlog.testing.capture_logs() as logs:
        sampled.record("GET", ROUTE, 200, time.perf_counter(), "fast")
        sampled.record("GET", ROUTE, 200, time.perf_counter() - http.SLOW_SECONDS, "slow")
        sampled.record("GET", ROUTE, 503, time.perf_counter(), "failed")
    assert [(e["request_id"], e["count"], e["status"]) for e in _lines(logs)] == [
        ("slow", 2, 200), ("failed", 1, 503)]


def test_every_one_logs_each_request() -> None:
    sampled = http.SampledRequestLog(every=1)
    with structlog.testing.capture_logs() as logs:
        for n in range(3):
            sampled.record("GET", ROUTE, 304, time.perf_counter(), f"id{n}")
    assert [e["count"] for e in _lines(logs)] == [1, 1, 1]


def test_a_fresh_request_id_is_32_hex_digits_and_kept_for_the_request() -> None:
    scope: dict[str, object] = {"headers": []}
    first = http.request_id_of(scope)
    assert len(first) == 32 and int(first, 16) >= 0 and first == first.lower()
    assert http.request_id_of(scope) == first
    assert http.request_id_of({"headers": []}) != first
