"""Capturing the service's log lines in a test leaves the suite's logging as it was."""

from __future__ import annotations

import logging

import structlog

from missionlink.observability import logging as ml_logging
from tests.helpers import service_log_lines


def test_the_suites_logging_is_back_afterwards() -> None:
    before = structlog.get_config()
    handlers = list(logging.getLogger().handlers)
    with service_log_lines() as out:
        structlog.get_logger().info("captured", n=1)
    assert '"event": "captured"' in out.getvalue()
    after = structlog.get_config()
    assert after["processors"] == before["processors"]
    assert logging.getLogger().handlers == handlers
    assert not any(isinstance(h, ml_logging._StructlogHandler)
                   for h in logging.getLogger().handlers)
