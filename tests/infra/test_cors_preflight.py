"""P6: with the CORS origins each environment's task definition sets, a browser-style
preflight succeeds (runs where the application is installed: the product's own venv)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("missionlink.api.app")

import httpx
from missionlink_infra.config import ENVIRONMENTS

from missionlink import bootstrap
from missionlink.api.app import create_app
from missionlink.config import Settings

PREFLIGHT_HEADERS = "authorization,content-type,idempotency-key"


async def preflight(env: str, tmp_path: Path, origin: str) -> httpx.Response:
    # The same comma-separated value the task definition passes as MISSIONLINK_CORS_ORIGINS.
    origins = ",".join(ENVIRONMENTS[env].cors_origins)
    settings = Settings(data_dir=tmp_path, cors_origins=origins)  # type: ignore[arg-type]
    container = bootstrap.build(settings)
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.options(
                "/api/v1/missions",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": PREFLIGHT_HEADERS,
                },
            )
    finally:
        await container.close()


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
async def test_p6_browser_preflight_from_the_environments_origin_succeeds(
    env: str, tmp_path: Path
) -> None:
    origin = ENVIRONMENTS[env].public_url
    response = await preflight(env, tmp_path, origin)
    assert response.status_code == 200, f"P6: preflight from {origin} failed: {response.text}"
    assert response.headers["access-control-allow-origin"] == origin
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in PREFLIGHT_HEADERS.split(","):
        assert header in allowed, f"P6: {header} is not allowed for {origin}"


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
async def test_p6_other_origins_are_refused(env: str, tmp_path: Path) -> None:
    response = await preflight(env, tmp_path, "https://evil.example")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
