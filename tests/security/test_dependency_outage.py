"""A database or the broker not answering is the server's trouble, said as 503, not 500."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

#: Nothing listens on port 1: every Redis call is refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"


def _count(route: str) -> float:
    value = REGISTRY.get_sample_value("missionlink_http_dependency_errors_total",
                                      {"route": route})
    return value or 0.0


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"broker_url": DEAD_REDIS, "rate_limit_signups_per_minute": 20}


async def test_unreachable_broker_is_503_with_retry_after_counted_and_logged(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _count("/api/v1/auth/signup")
    r = await client.post("/api/v1/auth/signup", json={
        "email": "fan@example.com", "password": "correct horse battery",
        "display_name": "Fan", "role": "viewer"})
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("/service-unavailable")
    assert body["retry_after"] == int(r.headers["Retry-After"]) > 0
    assert body["request_id"] == r.headers["X-Request-Id"]
    assert _count("/api/v1/auth/signup") == before + 1
    assert "dependency unavailable" in capsys.readouterr().out
