"""What the OpenAPI document promises about headers and auth is what the server does."""

from __future__ import annotations

import httpx

from missionlink.bootstrap import Container
from tests.helpers import make_user


async def test_idempotency_key_bounds_are_documented_and_enforced(
    client: httpx.AsyncClient, container: Container
) -> None:
    spec = (await client.get("/openapi.json")).json()
    params = spec["paths"]["/api/v1/wallet/topups"]["post"]["parameters"]
    key = next(p for p in params if p["name"] == "Idempotency-Key")
    assert {"minLength": 1, "maxLength": 255, "type": "string"} in key["schema"]["anyOf"]
    fan = await make_user(container)
    for bad in ("", "k" * 256):
        r = await client.post("/api/v1/wallet/topups", json={"amount": 1000},
                              headers={**fan.headers, "Idempotency-Key": bad})
        assert r.status_code == 422, (len(bad), r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.post("/api/v1/wallet/topups", json={"amount": 1000},
                          headers={**fan.headers, "Idempotency-Key": "k" * 255})
    assert r.status_code == 201, r.text


async def test_bearer_scheme_is_declared_only_where_a_token_is_required(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/wallet"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/api/v1/missions/{mission_id}"]["get"]
    r = await client.get("/api/v1/wallet")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
