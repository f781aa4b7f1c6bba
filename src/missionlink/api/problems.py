"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import redis.exceptions
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from missionlink.api.openapi_links import add_links
from missionlink.api.stream_gate import StreamsFull
from missionlink.domain.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    IdempotencyMismatch,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PayoutsUnavailable,
    ProviderUnavailable,
    RateLimited,
    RefundExceedsRefundable,
)
from missionlink.observability.http import (
    REQUEST_ID_HEADER,
    report_unhandled,
    request_id_of,
    route_template,
)
from missionlink.observability.metrics import DEPENDENCY_ERRORS, RATE_LIMITED, RATE_LIMITS
from missionlink.services.pledges import PledgeBusy

_log = structlog.get_logger(__name__)

TYPE_BASE = "https://missionlink.example.com/errors/"
MEDIA_TYPE = "application/problem+json"

_HTTP_CODES = {
    400: ("bad-request", "Bad request"),
    401: ("not-authenticated", "Not authenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-input", "Invalid input"),
    429: ("rate-limited", "Too many requests"),
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def internal_error(request_id: str) -> JSONResponse:
    """The answer to a failure of ours: no exception text (it may hold secrets or data),
    only the id that finds the stack in the logs."""
    return problem(
        500,
        "internal-error",
        "Internal server error",
        "the server failed to complete this request; quote the request id when reporting it",
        headers={REQUEST_ID_HEADER: request_id, "Cache-Control": "no-store",
                 "X-Content-Type-Options": "nosniff"},
        request_id=request_id,
    )


#: The HTTP status of each kind of error; a subclass answers as its nearest listed ancestor
#: (``InsufficientFunds`` as ``Conflict``), anything unlisted as 400.
HTTP_STATUS: dict[type[DomainError], int] = {
    DomainError: 400,
    InvalidInput: 422,
    IdempotencyMismatch: 422,
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    StreamsFull: 503,
    ProviderUnavailable: 502,
    PayoutsUnavailable: 503,
}


def status_of(exc: DomainError) -> int:
    for kind in type(exc).__mro__:
        status = HTTP_STATUS.get(kind)
        if status is not None:
            return status
    return 400


def domain_problem(exc: DomainError) -> JSONResponse:
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, RateLimited):
        RATE_LIMITED.labels(exc.limit if exc.limit in RATE_LIMITS else "other").inc()
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
        extra["retry_after"] = exc.retry_after
    status = status_of(exc)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, InvalidInput) and exc.errors:
        extra["errors"] = [domain_field_error(e) for e in exc.errors]
    if isinstance(exc, RefundExceedsRefundable):
        extra["refundable"] = exc.refundable
    extra.update(exc.fields())
    return problem(status, exc.code, exc.title, exc.detail, headers=headers, **extra)


#: A database or the broker not answering (down, restarting, a pool, lock or statement
#: timeout): nothing was wrong with the request, so 503 with ``Retry-After`` rather than 500.
UNAVAILABLE: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    PledgeBusy,
)
UNAVAILABLE_RETRY_AFTER = 5


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return unavailable_problem(request.scope, exc)


def unavailable_problem(scope: Scope, exc: Exception, template: str | None = None
                        ) -> JSONResponse:
    """503 for a dependency that did not answer, counted and logged; ``template`` for a
    request answered outside the router."""
    template = template or route_template(scope)
    DEPENDENCY_ERRORS.labels(route=template).inc()
    request_id = request_id_of(scope)
    _log.error("dependency unavailable", method=scope.get("method"), route=template,
               request_id=request_id, exc_info=exc)
    return problem(
        503, "service-unavailable", "Service unavailable",
        "a database or the message broker did not answer; try again shortly, with the same "
        "Idempotency-Key for a request that moves money",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        retry_after=UNAVAILABLE_RETRY_AFTER, request_id=request_id,
    )


def install(app: FastAPI) -> None:
    for exc_type in UNAVAILABLE:
        app.add_exception_handler(exc_type, _unavailable)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(exc.errors())

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        # Reached only when an exception escapes the outer middlewares (the last-resort
        # middleware answers everything inside them): Starlette's ServerErrorMiddleware
        # sends this instead of its plain-text 500, then re-raises for the server to log.
        report_unhandled(request.scope, exc)
        return internal_error(request_id_of(request.scope))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = _HTTP_CODES.get(exc.status_code, ("error", "Error"))
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem(exc.status_code, code, title, str(exc.detail), headers=headers or None)


#: Field codes (docs/errors.md#field-codes) for pydantic's error types; the code's params
#: come from the error's context.
_PYDANTIC_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown-field",
    "int_type": "not-integer", "int_parsing": "not-integer", "int_from_float": "not-integer",
    "string_type": "not-text", "string_unicode": "not-text",
    "bool_type": "not-boolean", "bool_parsing": "not-boolean",
    "greater_than_equal": "too-small", "greater_than": "too-small",
    "less_than_equal": "too-large", "less_than": "too-large",
    "string_too_short": "too-short", "string_too_long": "too-long",
    "literal_error": "not-allowed", "enum": "not-allowed",
    "model_type": "not-object", "model_attributes_type": "not-object", "dict_type": "not-object",
    "json_invalid": "malformed-json", "json_type": "malformed-json",
    "string_pattern_mismatch": "invalid",
}
#: Every field code the API answers; a custom validator's error type is one of them.
FIELD_CODES = frozenset({
    *_PYDANTIC_CODES.values(), "invalid", "blank", "bad-characters", "invalid-email",
    "reserved-email-domain", "out-of-range", "below-channel-minimum", "below-minimum",
    "malformed",
})
#: Request parts named first in a pydantic location; the field is what follows.
_PARTS = frozenset({"body", "query", "path", "header", "cookie"})


def _field_of(loc: Iterable[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _PARTS:
        parts = parts[1:]
    return ".".join(parts) or None


def _params(kind: str, ctx: Mapping[str, Any]) -> dict[str, Any]:
    if kind in ("greater_than_equal", "greater_than"):
        low = ctx.get("ge", ctx.get("gt"))
        if isinstance(low, int) and kind == "greater_than":
            low += 1
        return {"min": low} if isinstance(low, int | float) else {}
    if kind in ("less_than_equal", "less_than"):
        high = ctx.get("le", ctx.get("lt"))
        if isinstance(high, int) and kind == "less_than":
            high -= 1
        return {"max": high} if isinstance(high, int | float) else {}
    if kind == "string_too_short":
        return {"min": ctx.get("min_length")}
    if kind == "string_too_long":
        return {"max": ctx.get("max_length")}
    if kind in ("literal_error", "enum"):
        return {"allowed": re.findall(r"'([^']*)'", str(ctx.get("expected", "")))}
    # A custom validator's params: keep what JSON carries as it is.
    return {k: v for k, v in ctx.items() if isinstance(v, str | int | float | bool)}


def field_error(e: Mapping[str, Any]) -> dict[str, Any]:
    """One pydantic error as the API reports it: the original ``loc``/``msg``/``type`` and
    the field, its stable code and the code's params."""
    kind = str(e.get("type", ""))
    code = _PYDANTIC_CODES.get(kind) or (kind if kind in FIELD_CODES else "invalid")
    loc = list(e.get("loc", ()))
    return {"loc": loc, "msg": str(e.get("msg", "")), "type": kind, "field": _field_of(loc),
            "code": code, "params": _params(kind, e.get("ctx") or {})}


def domain_field_error(e: FieldError) -> dict[str, Any]:
    """A refusal of the use case in the same shape as a validation error."""
    return {"loc": [e.field] if e.field else [], "msg": e.message, "type": e.code,
            "field": e.field, "code": e.code, "params": dict(e.params)}


def validation_problem(raw: Iterable[Mapping[str, Any]]) -> JSONResponse:
    """422 ``invalid-input`` naming every invalid field at once; ``detail`` names the first."""
    errors = [field_error(e) for e in raw]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body") or "request"
    return problem(
        422, "invalid-input", "Invalid input", f"{where}: {first['msg']}", errors=errors
    )


#: The methods the API and the pages use, each probed for a 405's ``Allow``.
_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method the path takes, for ``Allow`` on a 405.

    Each method of a path is its own route, and the router's 405 names only the methods of
    the first route whose path matched; so ask the router about each method in turn.
    """
    allowed = []
    for method in _METHODS:
        probe: Scope = {"type": "http", "method": method, "path": request.scope["path"],
                        "root_path": request.scope.get("root_path", ""), "headers": []}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


class ProblemFieldError(BaseModel):
    """One invalid field of an ``invalid-input`` problem (docs/errors.md#field-codes)."""

    field: str | None
    code: str
    params: dict[str, Any]
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details; ``type`` ends in a code listed in docs/errors.md."""

    type: str
    title: str
    status: int
    detail: str
    retry_after: int | None = None
    request_id: str | None = None
    errors: list[ProblemFieldError] | None = None
    refundable: int | None = Field(
        default=None, description="`refund-exceeds-refundable`: KRW that may still be refunded")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": Problem,
        "description": "Problem details (application/problem+json)",
        "content": {MEDIA_TYPE: {}},
    },
    422: {"model": Problem, "description": "Invalid input", "content": {MEDIA_TYPE: {}}},
    413: {"model": Problem, "content": {MEDIA_TYPE: {}},
          "description": "The body is over MAX_BODY_BYTES, declared or not (`payload-too-large`)"},
    429: {"model": Problem, "content": {MEDIA_TYPE: {}},
          "description": "Too many requests (`rate-limited`); wait `Retry-After` seconds",
          "headers": {"Retry-After": {"description": "seconds to wait",
                                      "schema": {"type": "integer", "minimum": 0}}}},
    500: {"model": Problem, "content": {MEDIA_TYPE: {}},
          "description": "A failure of the server (`internal-error`); `request_id` finds it "
                         "in the logs"},
    503: {"model": Problem, "content": {MEDIA_TYPE: {}},
          "description": "A database or the broker did not answer (`service-unavailable`); "
                         "retry after `Retry-After` seconds",
          "headers": {"Retry-After": {"description": "seconds to wait",
                                      "schema": {"type": "integer", "minimum": 0}}}},
}
#: Statuses that never carry a body (RFC 9110), whatever the framework documents.
_NO_CONTENT = {"204", "205", "304"}


def install_openapi(app: FastAPI) -> None:
    """Document every response under the media type it really has: errors as
    application/problem+json, no content for 204, and the request id header on all."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = build()
        add_links(spec)
        spec.setdefault("components", {}).setdefault("headers", {})["RequestId"] = {
            "description": "the request's id: the client's own X-Request-Id when it is at "
                           "most 128 of A-Z a-z 0-9 . _ : -, else a new one",
            "schema": {"type": "string", "maxLength": 128},
        }
        for path in spec.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if MEDIA_TYPE in content and "application/json" in content:
                        content[MEDIA_TYPE] = content.pop("application/json")
                    if str(status) in _NO_CONTENT:
                        response.pop("content", None)
                    response.setdefault("headers", {})[REQUEST_ID_HEADER] = {
                        "$ref": "#/components/headers/RequestId"
                    }
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
