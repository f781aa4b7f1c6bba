"""A database or the broker not answering is the server's trouble, said as 503, not 500."""

from __future__ import annotations

import httpx
import pytest
import redis.exceptions
import sqlalchemy.exc
from prometheus_client import REGISTRY

from missionlink.api import fast_path
from missionlink.api.routers import live
from missionlink.bootstrap import Container
from tests.helpers import make_user

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


@pytest.mark.parametrize("settings_overrides", [{}])  # the in-process broker, then broken
@pytest.mark.parametrize("failure", [
    redis.exceptions.ConnectionError("broker went away"),
    redis.exceptions.ResponseError("OOM command not allowed"),
    TimeoutError("no answer"),
])
async def test_a_committed_write_stays_a_success_when_the_broker_then_fails(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
) -> None:
    fan = await make_user(container)

    async def refused(topic: str, message: dict[str, object]) -> None:
        raise failure

    monkeypatch.setattr(container.broker, "publish", refused)
    r = await client.post("/api/v1/wallet/topups", json={"amount": 5000}, headers=fan.headers)
    # A 503 here would invite a retry without a key: a second top-up.
    assert r.status_code == 201, r.text
    assert (await client.get("/api/v1/wallet", headers=fan.headers)).json()[
        "cash_balance"] == 5000


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_a_public_stream_opened_during_an_outage_is_503_through_the_front_layer(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*_: object, **__: object) -> None:
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError())

    monkeypatch.setattr(fast_path, "get_mission", down)
    monkeypatch.setattr(live, "get_mission", down)
    r = await client.get("/api/v1/missions/1/events")
    assert r.status_code == 503, r.text
    assert r.json()["type"].endswith("/service-unavailable")
    assert r.headers["X-Request-Id"]
