"""structlog setup: JSON lines outside dev, readable console lines in dev.

Every line of a request carries its ``request_id`` (bound by the request id middleware),
and a logged exception carries its whole stack: in JSON as the ``exception`` field, on
the console as a formatted traceback.
"""

from __future__ import annotations

import logging

import structlog


def configure(*, json_logs: bool, level: int = logging.INFO) -> None:
    # The console renderer formats tracebacks itself; JSON needs them rendered to text.
    tail: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json_logs else [structlog.dev.ConsoleRenderer()]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
