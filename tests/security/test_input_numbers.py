"""Numbers at the edge: ids, amounts, points, limits and cursors are ASCII digits within the
signed 64-bit range (and the field's own range); anything else is a 4xx problem, never a 500,
on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from missionlink import bootstrap
from missionlink.adapters.payments.providers import SIGNATURE_HEADER, WebhookProvider, sign
from missionlink.api import params
from missionlink.api.app import create_app
from missionlink.api.overlay_stream import resume_point
from missionlink.api.pagination import Page, encode_int
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.domain.errors import InvalidInput, NotAuthenticated
from missionlink.migrations.runner import upgrade_all
from missionlink.services.wallet import decode_cursor, encode_cursor
from tests.conftest import make_settings
from tests.fakes import MemoryMailer
from tests.helpers import Actor, make_user, propose, top_up

INT64_MAX = 2**63 - 1
TOO_BIG = [str(2**63), str(2**64), "9" * 20, "9" * 400]
NOT_ASCII = ["\u00b2", "\u0661\u0662", "\uff11\uff12", "\u0967\u0968"]  # superscript, Arabic-Indic, full-width, Devanagari
#: What Python's int() (and lax parsers) accept but the edge must not.
LAX = [" 12", "12 ", "+12", "1_2", "12.0", "-0", "0x10", "1e3", ""]
PROBLEM = "application/problem+json"


def _refused(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in (statuses or (404, 422)), (r.status_code, r.text[:300])
    assert r.headers["content-type"] == PROBLEM, r.headers["content-type"]
    assert r.json()["type"].rsplit("/", 1)[-1] in {"invalid-input", "not-found"}


async def _world(client: httpx.AsyncClient, container: Container
                 ) -> tuple[Actor, Actor, dict[str, Any]]:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 50_000)
    mission = await propose(client, fan, streamer)
    return streamer, fan, mission


# --- path ids -------------------------------------------------------------------------

ID_ROUTES = [
    ("GET", "/api/v1/missions/{}"),
    ("GET", "/api/v1/missions/{}/pledges"),
    ("POST", "/api/v1/missions/{}/pledges"),
    ("POST", "/api/v1/missions/{}/accept"),
    ("POST", "/api/v1/missions/{}/reject"),
    ("POST", "/api/v1/missions/{}/cancel"),
    ("POST", "/api/v1/missions/{}/result"),
    ("POST", "/api/v1/missions/{}/bets"),
    ("GET", "/api/v1/missions/{}/prediction"),
    ("GET", "/api/v1/streamers/{}"),
    ("GET", "/api/v1/channels/{}/posts"),
    ("POST", "/api/v1/channels/{}/posts"),
    ("GET", "/api/v1/posts/{}"),
    ("PATCH", "/api/v1/posts/{}"),
    ("DELETE", "/api/v1/posts/{}"),
    ("GET", "/api/v1/posts/{}/comments"),
    ("POST", "/api/v1/posts/{}/comments"),
    ("PATCH", "/api/v1/comments/{}"),
    ("DELETE", "/api/v1/comments/{}"),
]
_BODIES = {"pledges": {"amount": 1000}, "result": {"outcome": "success"},
           "bets": {"side": "success", "points": 10},
           "posts": {"title": "t", "body": "b"}, "comments": {"body": "b"}}


def _body(method: str, template: str) -> Any:
    if method not in {"POST", "PATCH"}:
        return None
    if method == "PATCH":
        return {"body": "b"} if template.startswith("/api/v1/comments/") else {"title": "t"}
    return _BODIES.get(template.rsplit("/", 1)[-1])


async def test_path_ids_out_of_range_or_not_ascii_are_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    fan = await make_user(container)
    for bad in [*TOO_BIG, *NOT_ASCII, "0", "-1", " 1", "1.0", "+1", "1_0"]:
        for method, template in ID_ROUTES:
            r = await client.request(method, template.format(bad), headers=fan.headers,
                                     json=_body(method, template))
            _refused(r)


async def test_largest_signed_64_bit_id_is_a_plain_not_found(
    client: httpx.AsyncClient, container: Container
) -> None:
    fan = await make_user(container)
    for method, template in ID_ROUTES:
        if method != "GET":
            continue
        r = await client.request(method, template.format(INT64_MAX), headers=fan.headers)
        if r.status_code == 200:  # lists of a channel or post that does not exist are empty
            assert r.json()["items"] == []
            continue
        _refused(r, 404)


# --- query strings --------------------------------------------------------------------

async def test_limit_is_ascii_digits_between_1_and_100(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer, fan, mission = await _world(client, container)
    urls = ["/api/v1/missions", "/api/v1/streamers", f"/api/v1/missions/{mission['id']}/pledges",
            f"/api/v1/channels/{streamer.id}/posts", "/api/v1/wallet/transactions"]
    for bad, url in itertools.product([*TOO_BIG, *NOT_ASCII, *LAX, "0", "101"], urls):
        r = await client.get(url, params={"limit": bad}, headers=fan.headers)
        _refused(r, 422)


async def test_streamer_filter_is_a_bounded_id(client: httpx.AsyncClient) -> None:
    for bad in [*TOO_BIG, *NOT_ASCII, *LAX, "0", "-1", "1.5"]:
        r = await client.get("/api/v1/missions", params={"streamer_id": bad})
        _refused(r, 422)


async def test_bounded_query_values_are_accepted(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer, _, mission = await _world(client, container)
    r = await client.get("/api/v1/missions", params={"streamer_id": str(streamer.id),
                                                     "limit": "100"})
    assert r.status_code == 200 and [m["id"] for m in r.json()["items"]] == [mission["id"]]
    r = await client.get("/api/v1/missions", params={"streamer_id": str(INT64_MAX), "limit": "1"})
    assert r.status_code == 200 and r.json()["items"] == []


# --- cursors --------------------------------------------------------------------------

def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


INT_CURSORS = [_b64(str(2**63)), _b64("9" * 400), _b64("١٢"), _b64("²"), _b64("0"),
               _b64("-5"), _b64(" 12"), _b64("1_2"), "%%%", "MTI!", "MTI=", "M", "\u00e9"]


async def test_id_cursors_are_strict(client: httpx.AsyncClient, container: Container) -> None:
    streamer, _, mission = await _world(client, container)
    urls = ["/api/v1/missions", "/api/v1/streamers", f"/api/v1/missions/{mission['id']}/pledges",
            f"/api/v1/channels/{streamer.id}/posts"]
    for bad, url in itertools.product(INT_CURSORS, urls):
        r = await client.get(url, params={"cursor": bad})
        _refused(r, 422)


WALLET_CURSORS = [
    _b64("2024-01-01T00:00:00|tr_1"),            # naive date
    _b64("2024-01-01|tr_1"),                    # a date without a time
    _b64("not a date|tr_1"),
    _b64("2024-01-01T00:00:00+00:00"),          # no transfer id
    _b64("2024-01-01T00:00:00+00:00|"),
    _b64("2024-01-01T00:00:00+00:00|" + "x" * 300),
    _b64("9999-12-31T23:59:59+00:00|tr\x00"),
    _b64("2024-01-01T00:00:00+14:00|tr_1"),
    "%%%", "garbage!", "\u00e9",
]


async def test_wallet_cursors_are_strict(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, fan, _ = await _world(client, container)
    for bad in WALLET_CURSORS:
        r = await client.get("/api/v1/wallet/transactions", params={"cursor": bad},
                             headers=fan.headers)
        _refused(r, 422)


async def test_wallet_cursor_round_trips(client: httpx.AsyncClient, container: Container) -> None:
    _, fan, _ = await _world(client, container)
    first = (await client.get("/api/v1/wallet/transactions?limit=1", headers=fan.headers)).json()
    r = await client.get("/api/v1/wallet/transactions",
                         params={"limit": 1, "cursor": first["next_cursor"]}, headers=fan.headers)
    assert r.status_code == 200 and r.json()["items"][0]["id"] != first["items"][0]["id"]


# --- bodies ---------------------------------------------------------------------------

BIG_NUMBERS = [2**63, 2**64, -(2**63) - 1, 10**400]


async def test_big_numbers_in_bodies_are_refused_and_change_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer, fan, mission = await _world(client, container)
    for big in BIG_NUMBERS:
        await _big_numbers_refused(client, streamer, fan, mission["id"], big)


async def _big_numbers_refused(client: httpx.AsyncClient, streamer: Actor, fan: Actor,
                               mid: int, big: int) -> None:
    attempts: list[tuple[str, str, dict[str, Any], Actor]] = [
        ("POST", "/api/v1/wallet/topups", {"amount": big}, fan),
        ("POST", f"/api/v1/missions/{mid}/pledges", {"amount": big}, fan),
        ("POST", f"/api/v1/missions/{mid}/bets", {"side": "success", "points": big}, fan),
        ("PATCH", "/api/v1/streamers/me/settings", {"min_mission_amount": big}, streamer),
        ("PATCH", "/api/v1/streamers/me/settings", {"accept_timeout_seconds": big}, streamer),
    ]
    base = {"streamer_id": streamer.id, "title": "t", "description": "", "amount": 10_000,
            "duration_seconds": 3600}
    for field in ("streamer_id", "amount", "duration_seconds"):
        attempts.append(("POST", "/api/v1/missions", {**base, field: big}, fan))
    before = (await client.get("/api/v1/wallet", headers=fan.headers)).json()
    for method, url, body, who in attempts:
        r = await client.request(method, url, json=body, headers=who.headers)
        # 10**400 is beyond what the JSON reader takes: the body is refused whole (400).
        assert r.status_code in (400, 422), (url, body, r.status_code, r.text[:200])
        assert r.headers["content-type"] == PROBLEM
    assert (await client.get("/api/v1/wallet", headers=fan.headers)).json() == before
    listed = (await client.get("/api/v1/missions")).json()["items"]
    assert [m["id"] for m in listed] == [mid]


def test_openapi_states_the_bounds(container: Container) -> None:
    spec = create_app(container).openapi()
    schemas = spec["components"]["schemas"]
    for name, field in [("PledgeIn", "amount"), ("TopupIn", "amount"), ("BetIn", "points"),
                        ("MissionIn", "streamer_id"), ("MissionIn", "amount"),
                        ("MissionIn", "duration_seconds")]:
        prop = schemas[name]["properties"][field]
        assert prop["type"] == "integer" and prop["exclusiveMaximum"] == 2**63, (name, field)
        assert prop["minimum"] >= 1, (name, field)
    for path, op in [("/api/v1/missions/{mission_id}", "get"),
                     ("/api/v1/posts/{post_id}", "get"),
                     ("/api/v1/streamers/{streamer_id}", "get")]:
        (param,) = [p for p in spec["paths"][path][op]["parameters"] if p["in"] == "path"]
        assert param["schema"] == {"type": "integer", "minimum": 1, "exclusiveMaximum": 2**63,
                                   "title": param["schema"]["title"]}, param
    listing = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/missions"]["get"]
               ["parameters"]}
    assert listing["limit"]["minimum"] == 1 and listing["limit"]["maximum"] == 100
    streamer_filter = listing["streamer_id"]["anyOf"][0]
    assert streamer_filter["minimum"] == 1 and streamer_filter["exclusiveMaximum"] == 2**63


# --- web pages ------------------------------------------------------------------------

PAGE_ROUTES = ["/missions/{}", "/channels/{}", "/posts/{}", "/channels/{}/open-missions"]


async def test_pages_with_impossible_ids_are_not_found(client: httpx.AsyncClient) -> None:
    for bad, template in itertools.product(
        [*TOO_BIG, *NOT_ASCII, "0", "-1", "+1", "1_0", " 1"], PAGE_ROUTES
    ):
        r = await client.get(template.format(bad))
        assert r.status_code == 404, (template, bad, r.status_code)
        assert r.headers["content-type"].startswith("text/html")


async def test_pages_with_a_bad_cursor_show_the_first_page(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer, _, mission = await _world(client, container)
    urls = ["/", f"/channels/{streamer.id}", f"/missions/{mission['id']}"]
    for bad, url in itertools.product(INT_CURSORS, urls):
        r = await client.get(url, params={"cursor": bad})
        assert r.status_code == 200, (url, bad, r.status_code)


# --- payment webhook ------------------------------------------------------------------

@pytest.mark.parametrize("stamp", ["9" * 500, "-" + "9" * 500, "١٢", "1_700_000_000", " 1",
                                   "1e9", "", "0x10"])
def test_webhook_timestamps_must_be_plain_unix_seconds(stamp: str) -> None:
    provider = WebhookProvider("whsec_x")
    body = b'{"payment_id": "p", "status": "completed"}'
    with pytest.raises(NotAuthenticated):
        provider.verify_webhook({SIGNATURE_HEADER: f"t={stamp},v1=00"}, body, datetime.now(UTC))


async def test_webhook_with_a_500_digit_timestamp_is_401_over_http(
    tmp_path: Path, database_urls: dict[str, str], clock: FrozenClock, mailer: MemoryMailer
) -> None:
    s = make_settings(tmp_path, database_urls, payment_provider="webhook",
                      payment_webhook_secret="whsec_test_secret")
    (tmp_path / "var").mkdir(exist_ok=True)
    await asyncio.to_thread(upgrade_all, s)
    c = bootstrap.build(s, clock=clock, mailer=mailer)
    try:
        transport = httpx.ASGITransport(app=create_app(c))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = json.dumps({"payment_id": "pay_x", "status": "completed"}).encode()
            stamp = "9" * 500
            r = await client.post("/api/v1/payments/webhook/webhook", content=body,
                                  headers={SIGNATURE_HEADER: f"t={stamp},v1=00"})
            assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
            good = sign("whsec_test_secret", int(clock.now().timestamp()), body)
            r = await client.post("/api/v1/payments/webhook/webhook", content=body,
                                  headers={SIGNATURE_HEADER: good})
            assert r.status_code == 404  # a well-formed event for an unknown payment
    finally:
        await c.close()


# --- the policy itself, as properties ----------------------------------------------------

def test_last_event_id_takes_ascii_digits_only() -> None:
    assert resume_point("p12") == 12
    for bad in ("p\u0661\u0662", "p\u00b2", "p\uff11\uff12", "p" + "9" * 19, "p-1", "p 1", "12"):
        assert resume_point(bad) is None, bad


@given(st.integers(min_value=1, max_value=INT64_MAX))
def test_every_id_in_range_round_trips(n: int) -> None:
    assert params.parse_id(str(n)) == n
    assert Page(1, encode_int(n)).int_cursor() == n


@given(st.integers().filter(lambda n: not 1 <= n <= INT64_MAX))
def test_every_id_out_of_range_is_refused(n: int) -> None:
    assert params.parse_id(str(n)) is None
    with pytest.raises(InvalidInput):
        Page(1, _b64(str(n))).int_cursor()


@given(st.text(max_size=25).filter(lambda s: not (s.isascii() and s.isdigit())))
def test_anything_but_ascii_digits_is_refused(text: str) -> None:
    assert params.parse_id(text) is None
    with pytest.raises(InvalidInput):
        Page(1, _b64(text)).int_cursor()


@given(st.one_of(st.text(max_size=40), st.text(max_size=60).map(_b64)))
def test_a_cursor_is_refused_or_is_exactly_what_the_server_wrote(text: str) -> None:
    """Anything else is InvalidInput (422); no other exception escapes."""
    with contextlib.suppress(InvalidInput):
        assert encode_int(Page(1, text).int_cursor()) == text
    with contextlib.suppress(InvalidInput):
        assert encode_cursor(*decode_cursor(text)) == text


@given(st.datetimes(timezones=st.just(UTC)), st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=80))
def test_wallet_cursors_round_trip(at: datetime, transfer_id: str) -> None:
    assert decode_cursor(encode_cursor(at, transfer_id)) == (at, transfer_id)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=6),
    st.text(max_size=12),
))
async def test_any_query_limit_is_ok_or_422_never_500(
    client: httpx.AsyncClient, value: str
) -> None:
    r = await client.get("/api/v1/missions", params={"limit": value})
    ok = value.isascii() and value.isdigit() and 1 <= int(value) <= 100
    assert r.status_code == (200 if ok else 422), (value, r.status_code)
