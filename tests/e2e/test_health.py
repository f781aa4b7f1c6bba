import httpx


async def test_healthz_and_readyz_report_ok(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"identity_db": "ok", "core_db": "ok", "broker": "ok"}


async def test_unknown_path_is_problem_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/not-found")


async def test_openapi_documents_problem_responses(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    responses = spec["paths"]["/api/v1/missions/{mission_id}/pledges"]["post"]["responses"]
    assert "application/problem+json" in responses["4XX"]["content"]
    assert "Problem" in spec["components"]["schemas"]
