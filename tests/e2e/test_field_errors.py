"""Validation problems name every invalid field at once, each with a stable code and the
params a page needs to say it in its own language (docs/errors.md#field-codes)."""

from __future__ import annotations

from typing import Any

import httpx

from missionlink.bootstrap import Container
from tests.helpers import make_user, propose, top_up

SIGNUP = "/api/v1/auth/signup"


def fields(r: httpx.Response) -> dict[str | None, dict[str, Any]]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/invalid-input")
    assert isinstance(problem["detail"], str) and problem["detail"]
    for e in problem["errors"]:
        assert set(e) >= {"field", "code", "params", "loc", "msg", "type"}, e
    return {e["field"]: e for e in problem["errors"]}


async def test_signup_names_every_invalid_field_at_once(client: httpx.AsyncClient) -> None:
    r = await client.post(SIGNUP, json={"email": "not-an-email", "password": "short",
                                        "display_name": "   ", "role": "admin",
                                        "language": "fr"})
    found = fields(r)
    assert found["email"]["code"] == "invalid-email"
    assert found["password"]["code"] == "too-short"
    assert found["password"]["params"] == {"min": 10}
    assert found["display_name"]["code"] == "blank"
    assert found["role"]["code"] == "not-allowed"
    assert found["role"]["params"] == {"allowed": ["viewer", "streamer"]}
    assert found["language"]["params"] == {"allowed": ["ko", "en"]}
    # The English detail names the first field, as before.
    assert r.json()["detail"].startswith("email:")


async def test_signup_flags_a_reserved_email_domain_and_a_missing_field(
    client: httpx.AsyncClient,
) -> None:
    found = fields(await client.post(SIGNUP, json={"email": "fan@site.example",
                                                   "password": "x" * 129, "role": "viewer"}))
    assert found["email"]["code"] == "reserved-email-domain"
    assert found["email"]["params"] == {"tld": "example"}
    assert found["password"] == found["password"] | {"code": "too-long",
                                                     "params": {"max": 128}}
    assert found["display_name"]["code"] == "required"


async def test_unknown_fields_and_wrong_types_have_codes(
    client: httpx.AsyncClient, container: Container,
) -> None:
    fan = await make_user(container)
    found = fields(await client.post("/api/v1/wallet/topups", headers=fan.headers,
                                     json={"amount": "5000", "coupon": 1}))
    assert found["amount"]["code"] == "not-integer"
    assert found["coupon"]["code"] == "unknown-field"
    found = fields(await client.get("/api/v1/missions?limit=0&cursor=%21"))
    assert found["limit"] == found["limit"] | {"code": "too-small", "params": {"min": 1}}
    found = fields(await client.get("/api/v1/missions?limit=abc"))
    assert found["limit"]["code"] == "not-integer"
    found = fields(await client.get("/api/v1/missions?cursor=bm9wZQ"))
    assert found["cursor"]["code"] == "malformed"


async def test_money_bounds_carry_min_and_max(
    client: httpx.AsyncClient, container: Container,
) -> None:
    s = container.settings
    fan, streamer = await make_user(container), await make_user(container, "streamer")
    found = fields(await client.post("/api/v1/wallet/topups", headers=fan.headers,
                                     json={"amount": 999}))
    assert found["amount"] == found["amount"] | {
        "code": "out-of-range", "params": {"min": 1000, "max": s.max_topup}}
    assert (await client.post("/api/v1/wallet/topups", headers=fan.headers,
                              json={"amount": 999})).json()["detail"] == (
        f"amount must be between 1000 and {s.max_topup} KRW")

    # A proposal with both the amount and the duration out of range: both at once.
    r = await client.post("/api/v1/missions", headers=fan.headers, json={
        "streamer_id": streamer.id, "title": "t", "amount": s.max_pledge + 1,
        "duration_seconds": s.min_mission_seconds - 1})
    found = fields(r)
    assert found["amount"]["params"] == {"min": s.min_pledge, "max": s.max_pledge}
    assert found["duration_seconds"] == found["duration_seconds"] | {
        "code": "out-of-range",
        "params": {"min": s.min_mission_seconds, "max": s.max_mission_seconds}}
    assert r.json()["detail"] == f"amount must be between {s.min_pledge} and {s.max_pledge} KRW"

    await top_up(client, fan, 50_000)
    mission = await propose(client, fan, streamer, amount=10_000)
    found = fields(await client.post(f"/api/v1/missions/{mission['id']}/pledges",
                                     headers=fan.headers, json={"amount": s.min_pledge - 1}))
    assert found["amount"] == found["amount"] | {
        "code": "out-of-range", "params": {"min": s.min_pledge, "max": s.max_pledge}}


async def test_a_channel_minimum_is_a_coded_field_error(
    client: httpx.AsyncClient, container: Container,
) -> None:
    fan, streamer = await make_user(container), await make_user(container, "streamer")
    r = await client.patch("/api/v1/streamers/me/settings", headers=streamer.headers,
                           json={"min_mission_amount": 5000})
    assert r.status_code == 200, r.text
    await top_up(client, fan, 10_000)
    found = fields(await client.post("/api/v1/missions", headers=fan.headers, json={
        "streamer_id": streamer.id, "title": "t", "amount": 2000, "duration_seconds": 3600}))
    assert found["amount"] == found["amount"] | {"code": "below-channel-minimum",
                                                 "params": {"min": 5000}}
    # Both settings out of range at once.
    found = fields(await client.patch("/api/v1/streamers/me/settings", headers=streamer.headers,
                                      json={"min_mission_amount": 1,
                                            "accept_timeout_seconds": 1}))
    assert set(found) == {"min_mission_amount", "accept_timeout_seconds"}
    assert found["accept_timeout_seconds"]["params"]["min"] == 60


async def test_text_policy_refusals_have_codes(
    client: httpx.AsyncClient, container: Container,
) -> None:
    fan, streamer = await make_user(container), await make_user(container, "streamer")
    found = fields(await client.post(f"/api/v1/channels/{streamer.id}/posts",
                                     headers=fan.headers,
                                     json={"title": "a\x07b", "body": "x" * 20_001}))
    assert found["title"] == found["title"] | {"code": "bad-characters",
                                               "params": {"char": "U+0007"}}
    assert found["body"]["code"] == "too-long"
    assert isinstance(found["body"]["params"]["max"], int)
