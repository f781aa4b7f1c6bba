"""Traces: an HTTP span with database child spans, a span per worker event, the trace id
in the log lines, and nothing of OpenTelemetry's SDK loaded when tracing is off."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from missionlink import bootstrap
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.migrations.runner import upgrade_all
from missionlink.observability import tracing
from tests.conftest import make_settings
from tests.fakes import MemoryMailer
from tests.helpers import make_user, service_log_lines, settle_all, top_up


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.shutdown()
    assert tracing.setup(exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


@pytest.fixture
async def traced(spans: InMemorySpanExporter, tmp_path: Path, database_urls: dict[str, str],
                 clock: FrozenClock, mailer: MemoryMailer) -> AsyncIterator[Container]:
    """A container built while tracing is on, so its engines are instrumented."""
    import asyncio

    settings = make_settings(tmp_path, database_urls)
    (tmp_path / "var").mkdir(exist_ok=True)
    await asyncio.to_thread(upgrade_all, settings)
    c = bootstrap.build(settings, clock=clock, mailer=mailer)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    with service_log_lines() as out:
        yield out


def _parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


async def test_a_request_is_a_server_span_with_database_children_and_logs_its_trace_id(
    traced: Container, spans: InMemorySpanExporter, log_lines: io.StringIO
) -> None:
    app = create_app(traced)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        fan = await make_user(traced)
        spans.clear()
        await top_up(client, fan, 20_000)
    finished = spans.get_finished_spans()
    servers = [s for s in finished if s.kind is SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in finished]
    server = servers[0]
    assert server.name == "POST /api/v1/wallet/topups"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/api/v1/wallet/topups"
    trace_id = server.context.trace_id
    db = [s for s in finished if s.kind is SpanKind.CLIENT and s.context.trace_id == trace_id]
    assert db, [s.name for s in finished]
    assert all(s.parent is not None for s in db)
    assert any("wallet" in str((s.attributes or {}).get("db.statement", "")) for s in db)
    lines = [x for x in _parsed(log_lines) if x.get("event") == "request"]
    assert lines and lines[-1]["trace_id"] == format(trace_id, "032x")
    assert lines[-1]["span_id"]


async def test_the_overlay_token_in_a_path_stays_out_of_the_span(
    traced: Container, spans: InMemorySpanExporter
) -> None:
    app = create_app(traced)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        await client.get("/overlay/not-a-real-secret-token?lang=en")
    server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    text = json.dumps({"name": server.name, **dict(server.attributes or {})})
    assert "not-a-real-secret-token" not in text
    assert server.name == "GET /overlay/{token}"


async def test_a_worker_event_is_a_span_named_by_its_topic_and_request(
    traced: Container, spans: InMemorySpanExporter, log_lines: io.StringIO
) -> None:
    app = create_app(traced)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        streamer = await make_user(traced, "streamer")
        fan = await make_user(traced)
        await top_up(client, fan, 20_000)
        r = await client.post("/api/v1/missions", headers={**fan.headers,
                              "X-Request-Id": "propose-1"}, json={
            "streamer_id": streamer.id, "title": "t", "description": "",
            "amount": 10_000, "duration_seconds": 3600})
        assert r.status_code == 201, r.text
    spans.clear()
    await settle_all(traced)
    events = [s for s in spans.get_finished_spans() if s.name == "outbox mission.created"]
    assert len(events) == 1
    attributes = events[0].attributes or {}
    assert attributes["missionlink.request_id"] == "propose-1"
    children = [s for s in spans.get_finished_spans()
                if s.parent is not None and s.parent.span_id == events[0].context.span_id]
    assert children, "the handlers' statements are children of the event's span"
    handled = [x for x in _parsed(log_lines) if x.get("event") == "outbox.handled"
               and x.get("topic") == "mission.created"]
    assert handled and handled[0]["request_id"] == "propose-1"
    assert handled[0]["trace_id"] == format(events[0].context.trace_id, "032x")


#: What tracing would load: none of it may be imported while tracing is off. (FastAPI
#: imports the OpenTelemetry API for its own telemetry, and redis-py imports the SDK's
#: metrics when the SDK is installed; neither is MissionLink's doing, nor traces.)
TRACING_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter",
                   "opentelemetry.instrumentation")


@pytest.mark.parametrize("without_sdk", [False, True], ids=["sdk-installed", "sdk-absent"])
def test_with_tracing_off_nothing_of_tracing_is_imported(tmp_path: Path,
                                                         without_sdk: bool) -> None:
    """A request, a worker pass and log lines with no endpoint configured; with the SDK
    made unimportable too (the ``otel`` extra not installed), all of it still works."""
    script = f"""
import asyncio, os, sys
for name in list(os.environ):
    if name.startswith("OTEL_"):
        del os.environ[name]
if {without_sdk!r}:
    class NoSdk:
        def find_spec(self, name, path, target=None):
            if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter",
                                "opentelemetry.instrumentation")):
                raise ImportError(name)
    sys.meta_path.insert(0, NoSdk())
import httpx
from missionlink import bootstrap
from missionlink.api.app import create_app
from missionlink.config import Settings
from missionlink.migrations.runner import upgrade_all
from missionlink.observability.logging import configure
from missionlink.workers.runner import Worker
settings = Settings(data_dir={str(tmp_path)!r})
upgrade_all(settings)
configure(json_logs=True)
async def main():
    c = bootstrap.build(settings)
    app = create_app(c)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        assert (await client.get("/api/v1/missions")).status_code == 200
    await Worker(c).run_once()
    await c.close()
asyncio.run(main())
print("LOADED", sorted(m for m in sys.modules if m.startswith({TRACING_MODULES!r})))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LOADED []" in done.stdout, done.stdout[-3000:]


def test_tracing_is_on_only_with_an_endpoint() -> None:
    assert not tracing.configured({})
    assert not tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})
    assert tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert not tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                                   "OTEL_SDK_DISABLED": "true"})


def test_spans_reach_an_otlp_endpoint_named_by_the_standard_variable(tmp_path: Path) -> None:
    """A real export: the OTLP/HTTP exporter posts the spans of a request to the endpoint
    of ``OTEL_EXPORTER_OTLP_ENDPOINT`` (flushed when the process exits)."""
    import http.server
    import os
    import threading

    received: list[tuple[str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = f"""
import asyncio, httpx
from missionlink import bootstrap
from missionlink.api.app import create_app
from missionlink.config import Settings
from missionlink.migrations.runner import upgrade_all
settings = Settings(data_dir={str(tmp_path)!r})
upgrade_all(settings)
async def main():
    c = bootstrap.build(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(c)),
                                 base_url="http://t") as client:
        assert (await client.get("/api/v1/missions")).status_code == 200
    await c.close()
asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"
    env["OTEL_SERVICE_NAME"] = "missionlink-test"
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=120, check=False, env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr[-3000:]
    traces = [body for path, body in received if path == "/v1/traces"]
    assert traces, received
    payload = b"".join(traces)
    assert b"GET /api/v1/missions" in payload and b"missionlink-test" in payload
