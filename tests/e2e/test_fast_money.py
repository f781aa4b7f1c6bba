"""The lean route for pledges and bets answers exactly as the app's routes would.

Each request goes once through an app with the front layer and once through the same
container's app without it; status, body and every header must agree (only ``Date``,
a generated ``X-Request-Id`` and, for a new pledge, its own ids and length may differ).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from missionlink.adapters.security.rate_limit import MemoryRateLimiter
from missionlink.api import fast_money
from missionlink.bootstrap import Container
from tests.e2e.parity import headers_of, same
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Requests the lean route answered itself, by mission id."""
    answered: list[int] = []
    run = fast_money.FastMoney._run

    async def counting(self: fast_money.FastMoney, scope: Any, receive: Any,
                       route: Any, mission_id: int, *rest: Any) -> Any:
        answered.append(mission_id)
        return await run(self, scope, receive, route, mission_id, *rest)

    monkeypatch.setattr(fast_money.FastMoney, "_run", counting)
    return answered


async def _same(fast: httpx.AsyncClient, normal: httpx.AsyncClient, path: str,
                **kw: Any) -> httpx.Response:
    a = await same(fast, normal, "POST", path, **kw)
    assert "x-request-id" in a.headers
    return a


async def _world(client: httpx.AsyncClient, container: Container
                 ) -> tuple[Actor, Actor, dict[str, Any]]:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    await top_up(client, creator, 100_000)
    mission = await propose(client, creator, streamer)
    fan = await make_user(container)
    await top_up(client, fan, 50_000)
    return streamer, fan, mission


async def test_an_ordinary_pledge_is_answered_in_front_as_the_app_would(
    client: httpx.AsyncClient, normal: httpx.AsyncClient, container: Container,
    served: list[int],
) -> None:
    _, fan, mission = await _world(client, container)
    path = f"/api/v1/missions/{mission['id']}/pledges"
    answers = []
    for n, c in enumerate((client, normal)):
        headers = {**fan.headers, "Idempotency-Key": f"fresh-{n}"}
        answers.append(await c.post(path, json={"amount": 1_000}, headers=headers))
    a, b = answers
    assert a.status_code == b.status_code == 201
    assert headers_of(a, "content-length") == headers_of(b, "content-length")
    assert a.headers["cache-control"] == "no-store"
    assert a.json().keys() == b.json().keys()
    assert (a.json()["amount"], a.json()["mission_id"]) == (1_000, mission["id"])
    assert b.json()["total_pledged"] == a.json()["total_pledged"] + 1_000
    assert served == [mission["id"]]
    # Replays of either answer, through either route, are the stored answer.
    for n, first in enumerate(answers):
        headers = {**fan.headers, "Idempotency-Key": f"fresh-{n}"}
        r = await _same(client, normal, path, json={"amount": 1_000}, headers=headers)
        assert r.headers["idempotent-replayed"] == "true" and r.json() == first.json()
    # The same key with another amount is refused by both.
    headers = {**fan.headers, "Idempotency-Key": "fresh-0"}
    r = await _same(client, normal, path, json={"amount": 2_000}, headers=headers)
    assert r.status_code == 422 and r.json()["type"].endswith("/idempotency-key-reused")
    # A safe incoming request id is echoed by both.
    r = await _same(client, normal, path, json={"amount": 1_000},
                    headers={**fan.headers, "Idempotency-Key": "fresh-1",
                             "X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    await settle_all(container)
    await assert_ledger_ok(container)


async def test_refusals_read_the_same_through_either_route(
    client: httpx.AsyncClient, normal: httpx.AsyncClient, container: Container,
    served: list[int],
) -> None:
    streamer, fan, mission = await _world(client, container)
    poor = await make_user(container)
    path = f"/api/v1/missions/{mission['id']}/pledges"
    answered_here = [
        # (who, body, status): the route's domain refusals, answered in front.
        (fan, {"amount": 1}, 422),                   # below MIN_PLEDGE
        (fan, {"amount": 10**12}, 422),              # above MAX_PLEDGE
        (poor, {"amount": 1_000}, 409),              # no money
        (streamer, {"amount": 1_000}, 403),          # the streamer's own mission
    ]
    for who, body, status in answered_here:
        r = await _same(client, normal, path, json=body, headers=who.headers)
        assert r.status_code == status, r.text
    r = await _same(client, normal, "/api/v1/missions/999999/pledges", json={"amount": 1_000},
                    headers=fan.headers)
    assert r.status_code == 404
    assert len(served) == len(answered_here) + 1  # the app was asked the other half
    served.clear()

    passed_on: list[dict[str, Any]] = [
        {"json": {"amount": 1_000}},                                   # no token
        {"json": {"amount": 1_000}, "headers": {"Authorization": "Bearer nope"}},
        {"json": {"amount": 1_000}, "headers": {"Authorization": "Basic abc"}},
        {"json": {"amount": "1000"}, "headers": fan.headers},
        {"json": {"amount": 1_000.0}, "headers": fan.headers},
        {"json": {"amount": True}, "headers": fan.headers},
        {"json": {"amount": 0}, "headers": fan.headers},
        {"json": {"amount": 2**63}, "headers": fan.headers},
        {"json": {"amount": 1_000, "note": "x"}, "headers": fan.headers},
        {"json": [1_000], "headers": fan.headers},
        {"content": b'{"amount": 1000', "headers": {**fan.headers,
                                                    "Content-Type": "application/json"}},
        {"content": b'{"amount": 1000}', "headers": {**fan.headers,
                                                     "Content-Type": "text/plain"}},
        {"json": {"amount": 1_000}, "headers": {**fan.headers, "Idempotency-Key": "k" * 256}},
    ]
    for kw in passed_on:
        r = await _same(client, normal, path, **kw)
        assert r.status_code in (401, 422), (kw, r.text)
    # A valid but unusual body (long, here) is the app's to answer.
    r = await client.post(path, content=b" " * fast_money.MAX_BODY + b'{"amount": 1000}',
                          headers={**fan.headers, "Content-Type": "application/json"})
    assert r.status_code == 201
    assert served == []
    await assert_ledger_ok(container)


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_pledges_per_minute": 1}])
async def test_the_rate_limit_answers_the_same_in_front(
    client: httpx.AsyncClient, normal: httpx.AsyncClient, container: Container,
    served: list[int],
) -> None:
    # The limiter's clock stands still, so both answers name the same Retry-After even
    # when the second request comes a second boundary later.
    container.limiter = MemoryRateLimiter(monotonic=lambda: 1_000.0)
    _, fan, mission = await _world(client, container)
    path = f"/api/v1/missions/{mission['id']}/pledges"
    assert (await client.post(path, json={"amount": 1_000}, headers=fan.headers)
            ).status_code == 201
    r = await _same(client, normal, path, json={"amount": 1_000}, headers=fan.headers)
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    assert served == [mission["id"]] * 2
    await assert_ledger_ok(container)


async def test_bets_are_answered_in_front_as_the_app_would(
    client: httpx.AsyncClient, normal: httpx.AsyncClient, container: Container,
    served: list[int],
) -> None:
    streamer, fan, mission = await _world(client, container)
    other = await make_user(container)
    r = await client.post(f"/api/v1/missions/{mission['id']}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    path = f"/api/v1/missions/{mission['id']}/bets"
    a = await client.post(path, json={"side": "success", "points": 100},
                          headers={**fan.headers, "Idempotency-Key": "bet-1"})
    b = await normal.post(path, json={"side": "failure", "points": 100},
                          headers={**other.headers, "Idempotency-Key": "bet-1"})
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    assert headers_of(a, "content-length") == headers_of(b, "content-length")
    assert a.json().keys() == b.json().keys()
    assert served == [mission["id"]]
    served.clear()
    # Replays, a reused key, refusals: byte for byte, and answered in front.
    r = await _same(client, normal, path, json={"side": "success", "points": 100},
                    headers={**fan.headers, "Idempotency-Key": "bet-1"})
    assert r.headers["idempotent-replayed"] == "true"
    r = await _same(client, normal, path, json={"side": "failure", "points": 100},
                    headers={**fan.headers, "Idempotency-Key": "bet-1"})
    assert r.status_code == 422
    r = await _same(client, normal, path, json={"side": "success", "points": 10**15},
                    headers=fan.headers)
    assert r.status_code == 409, r.text  # not enough points
    r = await _same(client, normal, path, json={"side": "success", "points": 100},
                    headers=streamer.headers)
    assert r.status_code == 403
    assert len(served) == 4
    served.clear()
    # Not exactly the model: the app answers.
    for body in ({"side": "maybe", "points": 100}, {"side": "success"},
                 {"side": "success", "points": 100, "x": 1}, {"side": 1, "points": 100},
                 {"side": "success", "points": "100"}):
        r = await _same(client, normal, path, json=body, headers=fan.headers)
        assert r.status_code == 422, (body, r.text)
    assert served == []
    await settle_all(container)
    await assert_ledger_ok(container)
