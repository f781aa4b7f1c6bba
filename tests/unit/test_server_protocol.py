"""The per-connection protocol of ``missionlink serve`` (api/server.py)."""

from __future__ import annotations

from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from missionlink.api import server


class Protocol(server.DeadlineHttpProtocol):
    limits = server.Deadlines(30, 30)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    return None


async def test_deadline_fields_live_in_slots_not_in_each_connections_dict() -> None:
    """Five more keys in uvicorn's per-connection ``__dict__`` cost about 1.3 KB for every
    open connection (a live stream holds one for as long as it lives)."""
    config = Config(app=_app, http="httptools")
    config.load()
    connection = Protocol(config, ServerState(), {})
    for name in ("_read_seconds", "_write_seconds", "_read_timer", "_write_timer",
                 "_request_begun"):
        assert name not in connection.__dict__
    assert connection._read_seconds == 30 and connection._request_begun is False
