"""OpenTelemetry traces: the HTTP layer, the databases and the worker's events.

Off unless an OTLP endpoint is configured, with the standard variables the exporter reads
itself: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (plus,
optionally, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``; ``OTEL_SDK_DISABLED=true`` keeps it off). When off, nothing
of the OpenTelemetry SDK, exporter or instrumentations is imported and every hook here is
a no-op; this module itself imports no OpenTelemetry code at load time.

When on, one tracer provider per process (not the global one, so FastAPI's own telemetry
stays off and nothing is traced twice) exports spans in batches over OTLP/HTTP. Tests
pass an exporter to :func:`setup` instead (the SDK's ``InMemorySpanExporter``), which
exports each span as it ends.

Span names and URL attributes never carry a raw path or a query string (an overlay token
is part of its path): the server span is named and labelled by the route template.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SERVICE_NAME = "missionlink"
#: Requests that are never traced (probes and scrapes).
EXCLUDED_PATHS = ("/healthz", "/readyz", "/metrics")
_URL_ATTRIBUTES = ("http.target", "url.path", "http.url", "url.full")

_provider: Any = None  # an SDK TracerProvider while tracing is on
_tracer: Any = None
_instrumented: weakref.WeakSet[Any] = weakref.WeakSet()


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment names an OTLP endpoint (and does not disable the SDK)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def enabled() -> bool:
    return _provider is not None


def setup(*, exporter: Any = None, environ: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on for this process when an endpoint is configured (or ``exporter``
    is given); returns whether it is on. Called again, it keeps what is set up."""
    global _provider, _tracer
    if _provider is not None:
        return True
    if exporter is None and not configured(environ):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME")
                                or SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _provider = provider
    _tracer = provider.get_tracer("missionlink")
    return True


def shutdown() -> None:
    """Flush what is pending and turn tracing off (the instrumented engines stay so)."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()
    if len(_instrumented):
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

        EngineTracer.remove_all_event_listeners()  # type: ignore[no-untyped-call]
        _instrumented.clear()


def instrument_engine(engine: AsyncEngine) -> None:
    """A client span per statement on ``engine`` (SQL text only, never its parameters)."""
    if _provider is None or engine.sync_engine in _instrumented:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeter

    # Per engine (the instrumentor instruments once per process); its pool metrics are
    # the Prometheus ones already.
    usage = NoOpMeter("missionlink").create_up_down_counter("db.client.connections.usage")
    EngineTracer(_provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
                 engine.sync_engine, usage)  # type: ignore[no-untyped-call]
    _instrumented.add(engine.sync_engine)


def wrap_asgi(app: ASGIApp) -> ASGIApp:
    """``app`` inside a server span per HTTP request (the app itself when tracing is off)."""
    if _provider is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    middleware: ASGIApp = OpenTelemetryMiddleware(
        _RouteNamedSpan(app), excluded_urls=",".join(EXCLUDED_PATHS),
        default_span_details=_span_details, tracer_provider=_provider,
        exclude_spans=["receive", "send"],
    )
    return middleware


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    # Named by the method until the route is known: a raw path may hold a secret.
    return str(scope.get("method") or "HTTP"), {}


class _RouteNamedSpan:
    """Names the request's span by its route template as the response starts (the span
    ends with the response's last byte), and replaces the raw path and query in its URL
    attributes by that template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import trace

        span = trace.get_current_span()

        async def naming_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                _name_by_route(span, scope)
            await send(message)

        await self.app(scope, receive, naming_send)


def _name_by_route(span: Any, scope: Scope) -> None:
    from missionlink.observability.http import route_template

    if not span.is_recording():
        return
    template = route_template(scope)
    span.update_name(f"{scope.get('method', 'HTTP')} {template}")
    span.set_attribute("http.route", template)
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str):
            prefix = value.split("/", 3)[:3] if "://" in value else []
            span.set_attribute(key, "/".join(prefix) + template if prefix else template)
    if "url.query" in attributes:
        span.set_attribute("url.query", "")


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """An internal span around a piece of work (nothing when tracing is off)."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(
        name, attributes={k: v for k, v in attributes.items() if v is not None}
    ):
        yield


def current_ids() -> tuple[str, str] | None:
    """The active span's trace and span ids as hex, for log lines; None without one."""
    if _provider is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
