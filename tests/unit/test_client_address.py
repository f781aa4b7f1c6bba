"""Per-address limits key on the client, believing forwarding headers only from proxies."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from starlette.requests import Request

from missionlink.api.deps import client_address
from missionlink.config import Settings


def _request(peer: str, headers: dict[str, str]) -> Request:
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": "/", "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (peer, 5000),
    }
    return Request(scope)


def _container(**settings: Any) -> Any:
    return SimpleNamespace(settings=Settings(**settings))


async def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    c = _container(trusted_proxies=["10.0.0.0/8"])
    xff = {"X-Forwarded-For": "203.0.113.7, 10.0.3.4"}
    assert await client_address(_request("10.0.1.1", xff), c) == "203.0.113.7"
    assert await client_address(_request("198.51.100.9", xff), c) == "198.51.100.9"


async def test_client_ip_header_from_a_trusted_edge_wins_over_forwarded_for() -> None:
    c = _container(trusted_proxies=["10.0.0.0/8"], client_ip_header="X-Viewer-Ip")
    headers = {"X-Forwarded-For": "1.2.3.4, 130.176.0.1", "X-Viewer-Ip": "203.0.113.7"}
    assert await client_address(_request("10.0.1.1", headers), c) == "203.0.113.7"
    # Straight from the internet the header is the client's own claim: ignored.
    assert await client_address(_request("198.51.100.9", headers), c) == "198.51.100.9"
    junk = {"X-Viewer-Ip": "not-an-ip"}
    assert await client_address(_request("10.0.1.1", junk), c) == "10.0.1.1"
