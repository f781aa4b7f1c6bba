"""Every log line of a whole scenario, at DEBUG, is free of secrets and email addresses,
and the lines a request causes later (its events, settlement, emails) name its id."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from missionlink.bootstrap import Container
from missionlink.observability import logging as ml_logging
from tests.fakes import MemoryMailer
from tests.helpers import service_log_lines, settle_all

PASSWORDS = {"streamer": "streamer pass phrase 1", "fan": "fan pass phrase 22",
             "bettor": "bettor pass phrase 333"}
WRONG_PASSWORD = "a wrong pass phrase 4444"
SMTP_PASSWORD = "smtp-secret-pw-5555"
WEBHOOK_SECRET = "whsec-payment-secret-6666"
KEY_PEM = Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()).decode()


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"jwt_private_key": KEY_PEM, "smtp_password": SMTP_PASSWORD,
            "smtp_user": "mailer", "payment_webhook_secret": WEBHOOK_SECRET,
            "rate_limit_login_failures": 5}


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Every line, structlog's and the standard library's, as the service writes them."""
    caplog.set_level(logging.DEBUG)  # the root logger too, restored afterwards
    with service_log_lines() as out:
        yield out


async def _signup_and_login(client: httpx.AsyncClient, who: str, email: str,
                            role: str = "viewer") -> dict[str, Any]:
    r = await client.post("/api/v1/auth/signup", json={
        "email": email, "password": PASSWORDS[who], "display_name": who.title(), "role": role})
    assert r.status_code == 201, r.text
    user: dict[str, Any] = r.json()
    r = await client.post("/api/v1/auth/login", json={"email": email,
                                                        "password": PASSWORDS[who]})
    assert r.status_code == 200, r.text
    pair: dict[str, Any] = r.json()
    return {"id": user["id"], "email": email, "access": pair["access_token"],
            "refresh": pair["refresh_token"],
            "headers": {"Authorization": f"Bearer {pair['access_token']}"}}


@pytest.mark.parametrize("database_urls", ["sqlite", pytest.param(
    "postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_a_whole_scenario_logs_no_secret_and_follows_the_request_id(
    client: httpx.AsyncClient, container: Container, mailer: MemoryMailer,
    log_lines: io.StringIO,
) -> None:
    streamer = await _signup_and_login(client, "streamer", "streamer.kim@example.com",
                                       "streamer")
    fan = await _signup_and_login(client, "fan", "fan.lee@example.net")
    bettor = await _signup_and_login(client, "bettor", "bettor.park@example.org")
    for who in (fan, bettor):
        r = await client.post("/api/v1/wallet/topups", json={"amount": 50_000},
                              headers=who["headers"])
        assert r.status_code == 201, r.text
    r = await client.post("/api/v1/missions", headers=fan["headers"], json={
        "streamer_id": streamer["id"], "title": "매운 라면 먹기", "description": "",
        "amount": 10_000, "duration_seconds": 3600})
    assert r.status_code == 201, r.text
    mission = r.json()["id"]
    r = await client.post(f"/api/v1/missions/{mission}/pledges", json={"amount": 5_000},
                          headers=bettor["headers"])
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/missions/{mission}/bets",
                          json={"side": "failure", "points": 100}, headers=bettor["headers"])
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/missions/{mission}/accept", headers=streamer["headers"])
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/missions/{mission}/result", json={"outcome": "success"},
                          headers={**streamer["headers"], "X-Request-Id": "result-req-1"})
    assert r.status_code == 200, r.text
    await settle_all(container)
    assert len(mailer.sent) == 3  # the two backers and the streamer
    r = await client.post("/api/v1/auth/login", json={"email": fan["email"],
                                                        "password": WRONG_PASSWORD})
    assert r.status_code == 401, r.text
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": fan["refresh"]})
    assert r.status_code == 200, r.text
    renewed = r.json()

    text = log_lines.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(lines) > 20
    secrets = {
        **{f"password of {k}": v for k, v in PASSWORDS.items()},
        "wrong password": WRONG_PASSWORD, "SMTP password": SMTP_PASSWORD,
        "webhook secret": WEBHOOK_SECRET,
        "JWT key": KEY_PEM.splitlines()[1],
        "JWT key (raw)": base64.b64encode(
            serialization.load_pem_private_key(KEY_PEM.encode(), None).private_bytes(  # type: ignore[union-attr]
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                serialization.NoEncryption())).decode(),
        "renewed access token": renewed["access_token"],
        "renewed refresh token": renewed["refresh_token"],
    }
    for who in (streamer, fan, bettor):
        secrets[f"access token of {who['email']}"] = who["access"]
        secrets[f"refresh token of {who['email']}"] = who["refresh"]
        secrets[f"address {who['email']}"] = who["email"]
    secrets["a password hash"] = "$argon2"
    found = {name for name, value in secrets.items() if value.lower() in text.lower()}
    assert not found, f"found in the logs: {sorted(found)}"
    # Each part of a JWT is long enough to be a give-away on its own.
    for name, value in secrets.items():
        if "token" in name and value.count(".") == 2:
            assert value.split(".")[2] not in text, name

    # The result's request id follows it into the settlement its event causes.
    caused = [x for x in lines if x.get("request_id") == "result-req-1"]
    events = {x.get("event") for x in caused}
    assert {"request", "outbox.handled"} <= events, events
    settled = [x for x in caused if x.get("event") == "outbox.handled"
               and x.get("topic") == "mission.ended"]
    assert settled and settled[0]["mission_id"] == mission
    # mission.settled was written by that settlement: its handling names the request too.
    assert any(x.get("topic") == "mission.settled" for x in caused)
    # The emails name the mission, which links them to the settlement above.
    sent = [x for x in lines if x.get("event") == "email.sent"]
    assert len(sent) == 3 and {x["mission_id"] for x in sent} == {mission}


def test_masking_and_redaction() -> None:
    clean = ml_logging.clean_text
    assert ml_logging.mask_email("alice@example.com") == "a***@example.com"
    assert clean("to Bob.Smith+x@mail.example.co.kr failed") == "to B***@mail.example.co.kr failed"
    assert clean("hash $argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA next") == "hash [redacted] next"
    assert "eyJ" not in clean("token eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl here")
    assert clean("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer [redacted]"
    assert clean("AUTHORIZATION: BEARER abc") == "AUTHORIZATION: BEARER [redacted]"
    assert clean("postgresql://ml:hunter2@db/core") == "postgresql://ml:[redacted]@db/core"
    assert "T000" not in clean("posting to https://hooks.slack.com/services/T000/B000/XXXX")
    event = ml_logging.redact(None, "info", {
        "event": "x", "password": "p", "refresh_token": "r", "smtp_password": "s",
        "tokens": 3, "nested": {"api_key": "k", "who": "c@example.com"}})
    assert event == {"event": "x", "password": "[redacted]", "refresh_token": "[redacted]",
                     "smtp_password": "[redacted]", "tokens": 3,
                     "nested": {"api_key": "[redacted]", "who": "c***@example.com"}}
