"""The HTTP response layer: the last-resort 500, request ids, the body limit for chunked
bodies, the security headers and the content types the OpenAPI document declares."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, StreamingResponse
from prometheus_client import REGISTRY
from starlette.types import ASGIApp, Receive, Scope, Send

from missionlink.api.app import create_app
from missionlink.api.middleware import DEFAULT_HTML_CSP, SecurityHeadersMiddleware
from missionlink.bootstrap import Container
from missionlink.config import Env
from tests.e2e.sse import live_server
from tests.helpers import Actor, make_user, propose, top_up

pytestmark = pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)

PROBLEM = "application/problem+json"
UNHANDLED = "missionlink_http_unhandled_errors_total"
HEX_ID = re.compile(r"[0-9a-f]{32}")


class Kaboom(RuntimeError):
    pass


def _failing_app(container: Container) -> FastAPI:
    """The product's app plus routes and a middleware that fail, for this module only."""
    router = APIRouter()

    @router.get("/api/v1/test-failures/{thing}")
    async def fails(thing: str) -> dict[str, str]:
        raise Kaboom(f"database password is hunter2 ({thing})")

    @router.get("/api/v1/test-failures/{thing}/stream")
    async def fails_before_streaming(thing: str) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            raise Kaboom("before the first chunk")
            yield b""  # pragma: no cover - makes this a generator

        return StreamingResponse(body(), media_type="text/csv")

    @router.get("/api/v1/test-failures/{thing}/half-stream")
    async def fails_while_streaming(thing: str) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"id,amount\n"
            raise Kaboom("after the first chunk")

        return StreamingResponse(body(), media_type="text/csv")

    @router.get("/api/v1/test-html")
    async def bare_html() -> HTMLResponse:
        return HTMLResponse("<p>no policy of its own</p>")

    app = create_app(container)
    app.include_router(router)

    def failing_middleware(inner: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == "/api/v1/test-middleware-failure":
                raise Kaboom("in a middleware")
            await inner(scope, receive, send)

        return middleware

    app.add_middleware(failing_middleware)
    return app


def _count(route: str) -> float:
    return REGISTRY.get_sample_value(UNHANDLED, {"route": route}) or 0.0


def _is_internal_error(r: httpx.Response) -> str:
    """Asserts a problem+json 500 that tells nothing of the failure; returns its id."""
    assert r.status_code == 500, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"].endswith("/internal-error") and body["status"] == 500
    assert body["request_id"] == r.headers["x-request-id"]
    assert "hunter2" not in r.text and "Kaboom" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    request_id: str = body["request_id"]
    return request_id


async def test_an_unhandled_exception_is_a_problem_500_logged_with_its_stack_and_counted(
    container: Container,
) -> None:
    app = _failing_app(container)
    route = "/api/v1/test-failures/{thing}"
    before = _count(route)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with structlog.testing.capture_logs() as logs:
            r = await client.get("/api/v1/test-failures/x1")
    request_id = _is_internal_error(r)
    assert HEX_ID.fullmatch(request_id)
    assert _count(route) == before + 1
    assert REGISTRY.get_sample_value(UNHANDLED, {"route": "/api/v1/test-failures/x1"}) is None
    [entry] = [e for e in logs if e["event"] == "unhandled exception"]
    assert entry["log_level"] == "error" and entry["route"] == route
    assert entry["request_id"] == request_id
    stack = structlog.processors.format_exc_info(None, "error", dict(entry))["exception"]
    assert "Traceback" in stack and "in fails" in stack and "Kaboom" in stack


async def test_failures_in_a_middleware_or_before_a_stream_starts_are_problem_500s_on_the_wire(
    container: Container,
) -> None:
    before = _count("/api/v1/test-failures/{thing}/stream")
    async with live_server(_failing_app(container)) as base, httpx.AsyncClient(
        base_url=base, timeout=10
    ) as http:
        streamed = await http.get("/api/v1/test-failures/x2/stream",
                                  headers={"X-Request-Id": "trace-42"})
        assert _is_internal_error(streamed) == "trace-42"
        assert _count("/api/v1/test-failures/{thing}/stream") == before + 1
        _is_internal_error(await http.get("/api/v1/test-middleware-failure"))


async def test_a_stream_failing_midway_is_cut_short_and_counted(container: Container) -> None:
    route = "/api/v1/test-failures/{thing}/half-stream"
    before = _count(route)
    async with live_server(_failing_app(container)) as base, httpx.AsyncClient(
        base_url=base, timeout=10
    ) as http:
        with structlog.testing.capture_logs() as logs:
            async with http.stream("GET", "/api/v1/test-failures/x3/half-stream") as r:
                assert r.status_code == 200
                with pytest.raises(httpx.RemoteProtocolError):
                    await r.aread()  # no clean end: the client knows the body is incomplete
    assert _count(route) == before + 1
    assert [e for e in logs if e["event"] == "unhandled exception" and e["route"] == route]


async def test_request_ids_are_echoed_when_safe_and_replaced_otherwise(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/api/v1/missions", "/api/v1/nope", "/"):
        r = await client.get(path, headers={"X-Request-Id": "req-01:abc.DEF_9"})
        assert r.headers["x-request-id"] == "req-01:abc.DEF_9", path
    for unsafe in ("x" * 129, "<script>", "a b", "é"):
        r = await client.get("/api/v1/missions", headers={b"X-Request-Id": unsafe.encode()})
        assert HEX_ID.fullmatch(r.headers["x-request-id"]), unsafe
    first, second = (await client.get("/healthz"), await client.get("/healthz"))
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A valid top-up of about ``total`` bytes (JSON allows any amount of whitespace)."""
    yield b'{"amount": 1000}'
    sent = 0
    while sent < total:
        yield b" " * size
        sent += size


async def test_a_chunked_body_over_the_limit_is_413_problem_json(
    client: httpx.AsyncClient, container: Container
) -> None:
    viewer = await make_user(container)
    headers = {**viewer.headers, "content-type": "application/json"}
    async with live_server(create_app(container)) as base, httpx.AsyncClient(
        base_url=base, timeout=10
    ) as http:
        r = await http.post("/api/v1/wallet/topups", content=_chunks(2_600_000),
                            headers=headers)
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in r.request.headers
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["type"].endswith("/payload-too-large")
        small = await http.post("/api/v1/wallet/topups", content=_chunks(10_000),
                                headers=headers)
        assert small.status_code == 201, small.text
    assert (await client.get("/api/v1/wallet", headers=viewer.headers)).json()[
        "cash_balance"] == 1000


async def test_nosniff_on_every_kind_of_response(client: httpx.AsyncClient) -> None:
    responses = {
        "json": await client.get("/api/v1/missions"),
        "html": await client.get("/"),
        "404": await client.get("/api/v1/nope"),
        "422": await client.get("/api/v1/missions", params={"limit": "many"}),
        "405": await client.delete("/api/v1/missions"),
        "static": await client.get("/static/app.js"),
        "openapi": await client.get("/openapi.json"),
    }
    assert responses["422"].status_code == 422 and responses["404"].status_code == 404
    for kind, r in responses.items():
        assert r.headers.get("x-content-type-options") == "nosniff", kind
        assert r.headers.get("referrer-policy"), kind


async def test_a_405_allows_every_method_the_path_takes(client: httpx.AsyncClient) -> None:
    for path, methods in (("/api/v1/missions", {"GET", "POST"}),
                          ("/api/v1/posts/1", {"GET", "PATCH", "DELETE"}),
                          ("/api/v1/streamers/me/settings", {"GET", "PATCH"})):
        r = await client.request("OPTIONS", path)
        assert r.status_code == 405 and r.headers["content-type"] == PROBLEM, path
        assert {m.strip() for m in r.headers["allow"].split(",")} - {"HEAD"} == methods, path


async def _login(client: httpx.AsyncClient) -> httpx.Response:
    account = {"email": "cache@example.com", "password": "correct horse battery"}
    r = await client.post("/api/v1/auth/signup",
                          json={**account, "display_name": "Cache", "role": "viewer"})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/auth/login", json=account)
    assert r.status_code == 200, r.text
    return r


async def test_credentials_and_money_are_never_stored_by_caches(
    client: httpx.AsyncClient, container: Container
) -> None:
    login = await _login(client)
    assert login.headers["cache-control"] == "no-store"
    viewer = await make_user(container)
    streamer = await make_user(container, "streamer")
    await top_up(client, viewer, 50_000)
    mission = await propose(client, viewer, streamer)
    private = {
        "wallet": await client.get("/api/v1/wallet", headers=viewer.headers),
        "journal": await client.get("/api/v1/wallet/transactions", headers=viewer.headers),
        "csv": await client.get("/api/v1/wallet/transactions", params={"format": "csv"},
                                headers=viewer.headers),
        "me": await client.get("/api/v1/me", headers=viewer.headers),
        "me, no token": await client.get("/api/v1/me"),
        "refresh": await client.post("/api/v1/auth/refresh", json={"refresh_token": "x"}),
        "webhook": await client.post("/api/v1/payments/webhook/sandbox", content=b"{}"),
        "pledge": await client.post(f"/api/v1/missions/{mission['id']}/pledges",
                                    json={"amount": 1000}, headers=viewer.headers),
        "public read with a token": await client.get(f"/api/v1/missions/{mission['id']}",
                                                     headers=viewer.headers),
        "auth cookie": await client.get("/api/v1/missions",
                                        headers={"Cookie": "ml_refresh=abc"}),
    }
    for what, r in private.items():
        assert r.headers.get("cache-control") == "no-store", (what, r.status_code)
    public = {
        "mission": await client.get(f"/api/v1/missions/{mission['id']}"),
        "missions": await client.get("/api/v1/missions"),
        "backers": await client.get(f"/api/v1/missions/{mission['id']}/pledges"),
        "language cookie": await client.get("/api/v1/missions",
                                            headers={"Cookie": "ml_lang=en"}),
    }
    for what, r in public.items():
        # Anonymous public reads may be kept briefly by a CDN; nothing else may.
        assert r.status_code == 200, what
        assert r.headers["cache-control"].startswith("public, max-age=1"), what


async def _overlay_page(client: httpx.AsyncClient, streamer: Actor) -> httpx.Response:
    r = await client.get("/api/v1/streamers/me/overlay", headers=streamer.headers)
    assert r.status_code == 200, r.text
    return await client.get("/overlay/" + r.json()["url"].rsplit("/overlay/", 1)[1])


async def test_html_carries_a_content_security_policy_that_forbids_framing(
    container: Container,
) -> None:
    streamer = await make_user(container, "streamer")
    transport = httpx.ASGITransport(app=_failing_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for path in ("/", "/login", f"/channels/{streamer.id}", "/missions/999", "/docs",
                     "/redoc"):
            r = await client.get(path)
            assert r.headers["content-type"].startswith("text/html"), path
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp, path
            assert "'unsafe-eval'" not in csp and "script-src *" not in csp, path
        docs = await client.get("/docs")
        nonce = re.search(r"'nonce-([^']+)'", docs.headers["content-security-policy"])
        assert nonce is not None and f'<script nonce="{nonce.group(1)}">' in docs.text
        assert "<script>" not in docs.text  # no inline script runs without the nonce
        bare = await client.get("/api/v1/test-html")
        assert bare.headers["content-security-policy"] == DEFAULT_HTML_CSP
        assert bare.headers["x-frame-options"] == "DENY"
        # OBS loads the overlay as a top-level page; its own nonce policy is kept as is.
        overlay = await _overlay_page(client, streamer)
        assert overlay.status_code == 200
        assert "frame-ancestors" not in overlay.headers["content-security-policy"]
        assert "x-frame-options" not in overlay.headers
        assert overlay.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("settings_overrides", [{"env": "staging"}])
async def test_hsts_in_staging(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/", "/api/v1/nope"):
        hsts = (await client.get(path)).headers["strict-transport-security"]
        assert hsts.startswith("max-age=31536000"), path


@pytest.mark.parametrize(("env", "expected"),
                         [(Env.dev, False), (Env.staging, True), (Env.prod, True)])
async def test_hsts_follows_the_environment(
    container: Container, env: Env, expected: bool
) -> None:
    # ENV=prod needs real databases and secrets to start; the app decides from ENV alone.
    container.settings.env = env
    app = create_app(container)
    layers = [m for m in app.user_middleware
              if isinstance(m.cls, type) and issubclass(m.cls, SecurityHeadersMiddleware)]
    assert [m.kwargs["hsts"] for m in layers] == [expected]


def _responses(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    responses: dict[str, Any] = spec["paths"][path][method]["responses"]
    return responses


async def test_openapi_declares_every_content_type_a_route_returns(
    client: httpx.AsyncClient, container: Container
) -> None:
    spec = (await client.get("/openapi.json")).json()
    journal = _responses(spec, "/api/v1/wallet/transactions", "get")["200"]["content"]
    assert {"application/json", "text/csv"} <= set(journal)
    viewer = await make_user(container)
    csv = await client.get("/api/v1/wallet/transactions", params={"format": "csv"},
                           headers=viewer.headers)
    assert csv.headers["content-type"].split(";")[0] in journal
    events = _responses(spec, "/api/v1/overlay/{token}/events", "get")["200"]["content"]
    assert set(events) == {"text/event-stream"}
    assert "content" not in _responses(spec, "/api/v1/auth/logout", "post")["204"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status in ("413", "429", "500"):
                content = operation["responses"][status]["content"]
                assert set(content) == {PROBLEM}, (method, path, status)
    assert "request_id" in spec["components"]["schemas"]["Problem"]["properties"]
