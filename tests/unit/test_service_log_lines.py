"""Capturing the service's log lines in a test leaves the suite's logging as it was."""

from __future__ import annotations

import json
import logging

import structlog

from missionlink.observability import logging as ml_logging
from tests.helpers import service_log_lines


def test_the_suites_logging_is_back_afterwards() -> None:
    before = structlog.get_config()
    handlers = list(logging.getLogger().handlers)
    with service_log_lines() as out:
        structlog.get_logger().info("captured", n=1)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["n"] for line in lines if line["event"] == "captured"] == [1]
    after = structlog.get_config()
    assert after["processors"] == before["processors"]
    assert logging.getLogger().handlers == handlers
    assert not any(isinstance(h, ml_logging._StructlogHandler)
                   for h in logging.getLogger().handlers)


def test_a_json_line_is_compact_utf8_and_takes_what_orjson_cannot() -> None:
    line = ml_logging.dumps({"event": "x", "title": "매운 라면", 7: "seven", "big": 2**70},
                            default=repr)
    assert json.loads(line) == {"event": "x", "title": "매운 라면", "7": "seven", "big": 2**70}
    assert "매운 라면" in line and ": " not in line
    # orjson's own path: the same line json.dumps would write, made compact.
    assert ml_logging.dumps({"a": [1, "b"], "c": None}) == '{"a":[1,"b"],"c":null}'
    assert ml_logging.dumps({"at": object()}, default=lambda o: "obj") == '{"at":"obj"}'
