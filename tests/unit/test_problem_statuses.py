"""Every domain error answers over HTTP with the status docs/errors.md promises for its code;
the domain's errors carry a code and words, the API decides the status."""

from __future__ import annotations

import re
from pathlib import Path

from missionlink.api import stream_gate
from missionlink.api.problems import status_of
from missionlink.domain import errors

DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def documented() -> dict[str, int]:
    rows = re.findall(r"^\| `([a-z-]+)` \| (\d{3}) \|", DOCS.read_text(), re.M)
    return {code: int(status) for code, status in rows}


def kinds() -> list[type[errors.DomainError]]:
    found = [v for v in vars(errors).values()
             if isinstance(v, type) and issubclass(v, errors.DomainError)
             and v is not errors.DomainError]
    return [*found, stream_gate.TooManyStreams, stream_gate.StreamsFull]


def test_each_error_answers_with_its_documented_status() -> None:
    statuses = documented()
    for kind in kinds():
        assert status_of(kind("x")) == statuses[kind.code], kind.__name__


def test_domain_errors_know_nothing_of_http() -> None:
    for kind in kinds():
        if kind.__module__ == errors.__name__:
            assert not hasattr(kind, "status"), kind.__name__
