"""structlog setup: JSON lines outside dev, readable console lines in dev.

Every line of a request carries its ``request_id`` (bound by the request id middleware);
the worker binds the same id while it handles an event the request wrote, so settlement,
broadcast and email lines name the request that caused them. While a span is active
(tracing on), a line carries ``trace_id`` and ``span_id`` too. A logged exception carries
its whole stack: in JSON as the ``exception`` field, on the console as a formatted
traceback. Lines of the standard library's loggers go through the same processors.

No line carries a secret: fields named like one (password, token, secret, authorization,
cookie, webhook) are replaced, and any text is cleaned of JWTs, bearer tokens, passwords in
URLs, password hashes and webhook URLs, and has its email addresses masked
(``a***@example.com``). Libraries that log SQL parameters are kept at WARNING.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from missionlink.observability import tracing

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"password|passwd|token|secret|authorization|cookie|webhook|api_?key"
                         r"|private_key", re.IGNORECASE)
#: Fields that name tokens without holding one.
_HARMLESS_KEYS = frozenset({"tokens", "token_type"})
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_URL_PASSWORD = re.compile(r"(://[^/\s:@]*):[^/\s@]+@")
_PASSWORD_HASH = re.compile(r"\$argon2[a-z]*\$[A-Za-z0-9$=,+/.-]+")
_WEBHOOK_URL = re.compile(r"https?://hooks\.slack\.com/\S+|https?://\S*/webhooks?/\S+",
                          re.IGNORECASE)


def mask_email(address: str) -> str:
    """``alice@example.com`` -> ``a***@example.com``."""
    return _EMAIL.sub(r"\1***@\2", address)


def clean_text(text: str) -> str:
    """``text`` without the secrets or addresses it may quote."""
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(r"\1 " + REDACTED, text)
    if "://" in text:
        text = _WEBHOOK_URL.sub(REDACTED, text)
        text = _URL_PASSWORD.sub(r"\1:" + REDACTED + "@", text)
    if "$argon2" in text:
        text = _PASSWORD_HASH.sub(REDACTED, text)
    if "@" in text:
        text = mask_email(text)
    return text


def _clean(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if depth > 3:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(k) else _clean(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value]
    return value


#: Field names already judged: a line's keys are nearly always the same few dozen names.
_judged: dict[str, bool] = {}
_JUDGED_MAX = 4096


def _secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    secret = _judged.get(key)
    if secret is None:
        secret = key not in _HARMLESS_KEYS and bool(_SECRET_KEY.search(key))
        if len(_judged) < _JUDGED_MAX:
            _judged[key] = secret
    return secret


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: see the module's docstring."""
    for key, value in event.items():
        if _secret_key(key) and value is not None:
            event[key] = REDACTED
        elif isinstance(value, str | dict | list | tuple):
            event[key] = _clean(value)
    return event


def add_trace_ids(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the active span's ``trace_id`` and ``span_id``."""
    if tracing.enabled():
        ids = tracing.current_ids()
        if ids is not None:
            event.setdefault("trace_id", ids[0])
            event.setdefault("span_id", ids[1])
    return event


def dumps(event: Any, *, default: Callable[[Any], Any] | None = None, **_: Any) -> str:
    """A JSON line as ``json.dumps`` writes it but compact and in UTF-8, several times
    faster (orjson); what orjson cannot encode (an integer past 64 bits) goes through
    ``json``."""
    try:
        return orjson.dumps(event, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(event, default=default, ensure_ascii=False, separators=(",", ":"))


def processors(*, json_logs: bool) -> list[structlog.types.Processor]:
    """Every processor after the log level and the time, renderer included."""
    # The console renderer formats tracebacks itself; JSON needs them rendered to text
    # (before the redaction, which cleans the rendered stack too).
    if json_logs:
        return [add_trace_ids, structlog.processors.format_exc_info, redact,
                structlog.processors.JSONRenderer(serializer=dumps)]
    # Plain tracebacks: a rich one with every frame's locals runs to thousands of lines and
    # takes seconds to render, during which the event loop serves nobody.
    return [add_trace_ids, redact,
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]


_head: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(*, json_logs: bool, level: int = logging.INFO, file: TextIO | None = None,
              cache: bool = True) -> None:
    """Log lines to ``file`` (standard output for structlog's, standard error for the
    standard library's, by default); ``cache=False`` lets a later call reconfigure the
    loggers already used (tests)."""
    tail = processors(json_logs=json_logs)
    structlog.configure(
        processors=[*_head, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file),
        cache_logger_on_first_use=cache,
    )
    _route_standard_logging(tail, level, file)


#: Libraries whose DEBUG (or INFO) lines quote statements with their parameters (addresses,
#: password hashes): kept at WARNING whatever the level.
QUIET_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool")


class _StructlogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler this module installs (replaced, not added, when called again)."""


def _route_standard_logging(
    tail: list[structlog.types.Processor], level: int, file: TextIO | None
) -> None:
    """The standard library's records (asyncio, the broker, uvicorn's errors) as lines of
    the same shape, request id, trace id and redaction included."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_head, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    handler = _StructlogHandler(file)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StructlogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(max(level, logging.INFO))
