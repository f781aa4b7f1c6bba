"""Edges of the lean money route that an HTTP client cannot easily produce: a client gone
mid-body, a body longer than declared, a token check that fails unexpectedly. Each goes
to the app behind it with every byte and message it was sent, in order."""

from __future__ import annotations

from typing import Any

import pytest

from missionlink.api import fast_money

PATH = "/api/v1/missions/7/pledges"


class Behind:
    """The app behind the lean route: records what it was given."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.called = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                return


def _scope(length: int) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": PATH, "root_path": "",
            "query_string": b"", "headers": [
                (b"authorization", b"Bearer token"),
                (b"content-type", b"application/json"),
                (b"content-length", str(length).encode()),
            ]}


def _receiving(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return receive


async def _send(message: Any) -> None:
    raise AssertionError(f"the lean route answered itself: {message}")


def _route(behind: Behind) -> fast_money.FastMoney:
    return fast_money.FastMoney(behind, container=None,  # type: ignore[arg-type]
                                hsts=False, cors=False, auth_cookies=())


async def test_a_client_gone_mid_body_is_the_apps_to_note() -> None:
    behind = Behind()
    await _route(behind)(_scope(17), _receiving(
        {"type": "http.request", "body": b'{"amou', "more_body": True},
        {"type": "http.disconnect"}), _send)
    assert behind.messages == [
        {"type": "http.request", "body": b'{"amou', "more_body": True},
        {"type": "http.disconnect"}]


async def test_a_body_longer_than_declared_goes_to_the_app_unread_beyond() -> None:
    behind = Behind()
    await _route(behind)(_scope(4), _receiving(
        {"type": "http.request", "body": b'{"amount": 1000}', "more_body": True},
        {"type": "http.request", "body": b" ", "more_body": False}), _send)
    assert behind.messages == [
        {"type": "http.request", "body": b'{"amount": 1000}', "more_body": True},
        {"type": "http.request", "body": b" ", "more_body": False}]


async def test_an_unexpected_failure_of_the_token_check_is_left_to_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(container: Any, token: str) -> Any:
        raise RuntimeError("not a domain error")

    monkeypatch.setattr(fast_money, "verify_token", broken)
    behind = Behind()
    body = b'{"amount": 1000}'
    await _route(behind)(_scope(len(body)), _receiving(
        {"type": "http.request", "body": body, "more_body": False}), _send)
    assert behind.messages == [{"type": "http.request", "body": body, "more_body": False}]
