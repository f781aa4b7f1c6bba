"""Money rules at the HTTP edge: strict amounts, limits, funds, idempotency, CSV receipts."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.helpers import assert_ledger_ok, make_user, propose, top_up, wallet


@pytest.mark.parametrize("amount", ["5000", True, 5000.0, 5000.5, None])
async def test_amounts_must_be_json_integers(
    client: httpx.AsyncClient, container: Container, amount: object
) -> None:
    a = await make_user(container)
    r = await client.post("/api/v1/wallet/topups", json={"amount": amount}, headers=a.headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "amount" in r.json()["detail"]
    assert await wallet(client, a) == {"cash_balance": 0, "points_balance": 1000, "debt": 0}


async def test_unknown_fields_and_out_of_range_top_ups_are_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    a = await make_user(container)
    r = await client.post("/api/v1/wallet/topups", json={"amount": 5000, "bonus": 1},
                          headers=a.headers)
    assert r.status_code == 422
    for amount in (999, container.settings.max_topup + 1, -1000):
        r = await client.post("/api/v1/wallet/topups", json={"amount": amount},
                              headers=a.headers)
        assert r.status_code == 422, amount
    r = await client.post("/api/v1/wallet/topups", json={"amount": 1000}, headers=a.headers)
    assert r.status_code == 201 and r.json()["status"] == "completed"


async def test_pledge_larger_than_balance_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a, b = await make_user(container), await make_user(container)
    await top_up(client, a, 10_000)
    await top_up(client, b, 2_000)
    m = await propose(client, a, streamer, amount=10_000, duration=600, title="t")
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 3_000},
                          headers=b.headers)
    assert r.status_code == 409 and r.json()["type"].endswith("/insufficient-funds")
    assert await wallet(client, b) == {"cash_balance": 2_000, "points_balance": 1000, "debt": 0}
    assert (await client.get(f"/api/v1/missions/{m['id']}")).json()["total_pledged"] == 10_000
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 500},
                          headers=b.headers)
    assert r.status_code == 422
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                          headers=streamer.headers)
    assert r.status_code == 403
    await assert_ledger_ok(container)


async def test_idempotency_key_replays_and_refuses_a_different_body(
    client: httpx.AsyncClient, container: Container
) -> None:
    a = await make_user(container)
    h = {**a.headers, "Idempotency-Key": "k-1"}
    r1 = await client.post("/api/v1/wallet/topups", json={"amount": 5000}, headers=h)
    r2 = await client.post("/api/v1/wallet/topups", json={"amount": 5000}, headers=h)
    assert r1.status_code == r2.status_code == 201
    assert r1.json() == r2.json() and r2.headers["Idempotent-Replayed"] == "true"
    assert (await wallet(client, a))["cash_balance"] == 5000
    r3 = await client.post("/api/v1/wallet/topups", json={"amount": 6000}, headers=h)
    assert r3.status_code == 422 and r3.json()["type"].endswith("/idempotency-key-reused")
    other = await make_user(container)
    r4 = await client.post("/api/v1/wallet/topups", json={"amount": 6000},
                           headers={**other.headers, "Idempotency-Key": "k-1"})
    assert r4.status_code == 201  # keys are per user
    r5 = await client.post("/api/v1/wallet/topups", json={"amount": 6000},
                           headers={**a.headers, "Idempotency-Key": "x" * 256})
    assert r5.status_code == 422
    await assert_ledger_ok(container)


async def test_bodies_over_one_mebibyte_get_413(
    client: httpx.AsyncClient, container: Container
) -> None:
    a = await make_user(container)
    big = b'{"amount": 1000, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    r = await client.post("/api/v1/wallet/topups", content=big,
                          headers={**a.headers, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["status"] == 413


async def test_browser_preflight_succeeds_for_an_allowed_origin_only(
    client: httpx.AsyncClient,
) -> None:
    """P6: a browser preflight with the headers the front end sends."""
    ask = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"}
    ok = await client.options("/api/v1/missions", headers={
        "Origin": "https://app.missionlink.example.com", **ask})
    assert ok.status_code == 200, "P6: preflight from an allowed origin must succeed"
    assert ok.headers["access-control-allow-origin"] == "https://app.missionlink.example.com"
    allowed = ok.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {
        h.strip() for h in allowed.split(",")}
    bad = await client.options("/api/v1/missions", headers={"Origin": "https://evil.example",
                                                             **ask})
    assert "access-control-allow-origin" not in bad.headers


async def test_ledger_csv_export_has_a_receipt_per_movement(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 30_000)
    m = await propose(client, a, streamer, amount=10_000, duration=600, title="t")
    await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 2_000},
                      headers=a.headers)
    r = await client.get("/api/v1/wallet/transactions?format=raw_csv", headers=a.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    kinds = sorted(row["kind"] for row in rows)
    assert kinds == ["pledge", "pledge", "signup_bonus", "topup"]
    assert sorted(int(row["amount"]) for row in rows if row["kind"] == "pledge") == [-10_000,
                                                                                     -2_000]


async def test_transactions_paginate_with_a_cursor(
    client: httpx.AsyncClient, container: Container
) -> None:
    a = await make_user(container)
    for _ in range(5):
        await top_up(client, a, 1000)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/wallet/transactions?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=a.headers)).json()
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    for bad in ("limit=0", "limit=101", "cursor=%%%"):
        r = await client.get(f"/api/v1/wallet/transactions?{bad}", headers=a.headers)
        assert r.status_code == 422, bad


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "   "), ("title", "x" * 201), ("description", "d" * 5001),
     ("duration_seconds", 59), ("duration_seconds", 604_801), ("streamer_id", "1")],
)
async def test_mission_proposals_are_validated(
    client: httpx.AsyncClient, container: Container, field: str, value: object
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 10_000)
    body = {"streamer_id": streamer.id, "title": "ok", "description": "", "amount": 1000,
            "duration_seconds": 600, field: value}
    r = await client.post("/api/v1/missions", json=body, headers=a.headers)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert await wallet(client, a) == {"cash_balance": 10_000, "points_balance": 1000, "debt": 0}


async def test_proposals_respect_channel_settings(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 10_000)
    r = await client.patch("/api/v1/streamers/me/settings", headers=streamer.headers,
                           json={"min_mission_amount": 5000})
    assert r.status_code == 200 and r.json()["min_mission_amount"] == 5000
    body = {"streamer_id": streamer.id, "title": "ok", "amount": 3000, "duration_seconds": 600}
    assert (await client.post("/api/v1/missions", json=body, headers=a.headers)).status_code == 422
    await client.patch("/api/v1/streamers/me/settings", headers=streamer.headers,
                       json={"missions_enabled": False})
    r = await client.post("/api/v1/missions", json={**body, "amount": 5000}, headers=a.headers)
    assert r.status_code == 409
    r = await client.patch("/api/v1/streamers/me/settings", headers=a.headers,
                           json={"missions_enabled": True})
    assert r.status_code == 403
    r = await client.patch("/api/v1/streamers/me/settings", headers=streamer.headers,
                           json={"accept_timeout_seconds": 30})
    assert r.status_code == 422


async def test_pledge_refusals_name_their_reason(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a, b = await make_user(container), await make_user(container)
    await top_up(client, a, 10_000)
    r = await client.post("/api/v1/missions/999999/pledges", json={"amount": 1000},
                          headers=a.headers)
    assert r.status_code == 404 and r.json()["detail"] == "mission 999999 does not exist"
    m = await propose(client, a, streamer, amount=10_000, duration=600, title="t")
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                          headers=b.headers)
    assert r.status_code == 409 and r.json()["detail"] == "not enough cash in the wallet for 1000"
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                          headers=streamer.headers)
    assert r.status_code == 403 and "own channel" in r.json()["detail"]
    await client.post(f"/api/v1/missions/{m['id']}/reject", headers=streamer.headers)
    await top_up(client, b, 5_000)
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 1000},
                          headers=b.headers)
    assert r.status_code == 409
    assert r.json()["detail"] == "cannot pledge a mission that is rejected"
    assert (await wallet(client, b))["cash_balance"] == 5_000
    await assert_ledger_ok(container)


async def test_idempotency_keys_are_forgotten_after_a_day(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    a, b = await make_user(container), await make_user(container)
    await top_up(client, a, 10_000)
    await top_up(client, b, 10_000)
    m = (await client.post("/api/v1/missions", headers=a.headers, json={
        "streamer_id": streamer.id, "title": "t", "amount": 1000,
        "duration_seconds": 7 * 86_400})).json()
    await client.patch("/api/v1/streamers/me/settings", headers=streamer.headers,
                       json={"accept_timeout_seconds": 7 * 86_400})
    await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    h = {**b.headers, "Idempotency-Key": "daily"}
    url = f"/api/v1/missions/{m['id']}/pledges"
    first = await client.post(url, json={"amount": 1000}, headers=h)
    clock.advance(3600)
    same = await client.post(url, json={"amount": 1000}, headers=h)
    assert same.headers.get("Idempotent-Replayed") == "true"
    clock.advance(86_400)
    later = await client.post(url, json={"amount": 1000}, headers=h)
    assert first.status_code == later.status_code == 201
    assert "Idempotent-Replayed" not in later.headers and later.json()["id"] != first.json()["id"]
    assert (await wallet(client, b))["cash_balance"] == 8_000
    await assert_ledger_ok(container)
