"""A message with a pledge, anonymous pledges, and the streamer hiding a message.

The message is stored masked, shown escaped on the mission page, in the backers list and in
the live streams; an anonymous pledge shows nobody's name or id anywhere public; a hidden
message disappears from every public view while the pledge stays. The table of refusals
and stored forms on both pledge paths is ``tests/integration/test_pledge_parity.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.parity import same
from tests.e2e.sse import live_server, open_stream
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up


@pytest.fixture
async def server(container: Container) -> AsyncIterator[str]:
    app: FastAPI = create_app(container)
    async with live_server(app) as url:
        yield url


async def _world(client: httpx.AsyncClient, container: Container
                 ) -> tuple[Actor, Actor, dict[str, Any]]:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    await top_up(client, creator, 50_000)
    mission = await propose(client, creator, streamer)
    fan = await make_user(container, name="열혈팬")
    await top_up(client, fan, 50_000)
    await settle_all(container)  # the proposal's own events are relayed before the test's
    return streamer, fan, mission


async def _pledge(client: httpx.AsyncClient, fan: Actor, mission_id: int,
                  **extra: Any) -> dict[str, Any]:
    r = await client.post(f"/api/v1/missions/{mission_id}/pledges",
                          json={"amount": 1_000, **extra}, headers=fan.headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_message_is_shown_escaped_and_an_anonymous_pledge_names_nobody(
    client: httpx.AsyncClient, container: Container, server: str
) -> None:
    _, fan, mission = await _world(client, container)
    mid = mission["id"]
    async with open_stream(server, f"/api/v1/missions/{mid}/events") as stream:
        await stream.next_data()  # the snapshot
        named = await _pledge(client, fan, mid, message="<b>힘내요</b> fuck")
        hidden_name = await _pledge(client, fan, mid, message="누군지 몰라도 돼요",
                                    anonymous=True)
        await settle_all(container)
        _, first = await stream.until("pledge.created")
        _, second = await stream.until("pledge.created")
    assert named["message"] == "<b>힘내요</b> ****" and named["anonymous"] is False
    assert first["message"] == "<b>힘내요</b> ****" and first["display_name"] == "열혈팬"
    assert first["user_id"] == fan.id
    assert second["pledge_id"] == hidden_name["id"] and second["anonymous"] is True
    assert second["display_name"] is None and second["user_id"] is None
    assert second["message"] == "누군지 몰라도 돼요"
    # The pledge's own answer still names its author: it goes to the author alone.
    assert hidden_name["user_id"] == fan.id

    backers = (await client.get(f"/api/v1/missions/{mid}/pledges")).json()["items"]
    by_id = {b["id"]: b for b in backers}
    assert by_id[named["id"]]["message"] == "<b>힘내요</b> ****"
    assert by_id[hidden_name["id"]]["user_id"] is None
    assert by_id[hidden_name["id"]]["display_name"] is None
    page = (await client.get(f"/missions/{mid}")).text
    assert "&lt;b&gt;힘내요&lt;/b&gt; ****" in page and "<b>힘내요</b>" not in page
    assert "fuck" not in page

    # A replayed stream shows the same as the live one did.
    async with open_stream(server, f"/api/v1/missions/{mid}/events",
                           {"Last-Event-ID": f"p{named['id'] - 1}"}) as stream:
        await stream.next_data()
        replayed = [(await stream.next_data())[1] for _ in range(2)]
    assert [r["anonymous"] for r in replayed] == [False, True]
    assert replayed[1]["user_id"] is None and replayed[1]["display_name"] is None
    await assert_ledger_ok(container)


async def test_the_streamer_hides_a_message_and_nobody_else_can(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer, fan, mission = await _world(client, container)
    mid = mission["id"]
    pledge = await _pledge(client, fan, mid, message="이 메시지는 숨겨져요")
    path = f"/api/v1/missions/{mid}/pledges/{pledge['id']}/hide"

    r = await client.post(path, headers=fan.headers)
    assert r.status_code == 403, r.text
    r = await client.post(f"/api/v1/missions/{mid}/pledges/999999/hide",
                          headers=streamer.headers)
    assert r.status_code == 404 and "pledge 999999" in r.json()["detail"]
    r = await client.post(path)
    assert r.status_code == 401

    for _ in range(2):  # hiding again answers the same
        r = await client.post(path, headers=streamer.headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"id": pledge["id"], "mission_id": mid,
                            "streamer_id": streamer.id, "message": None,
                            "message_hidden": True}
    shown = (await client.get(f"/api/v1/missions/{mid}/pledges")).json()["items"]
    mine = next(b for b in shown if b["id"] == pledge["id"])
    assert mine["message"] is None and mine["message_hidden"] is True
    assert mine["amount"] == 1_000  # the pledge stays
    assert "이 메시지는 숨겨져요" not in (await client.get(f"/missions/{mid}")).text
    await assert_ledger_ok(container)


async def test_a_pledge_with_a_message_is_answered_in_front_as_the_app_would(
    client: httpx.AsyncClient, normal: httpx.AsyncClient, container: Container
) -> None:
    _, fan, mission = await _world(client, container)
    path = f"/api/v1/missions/{mission['id']}/pledges"
    bad = {"amount": 1_000, "message": "x" * 101}
    await same(client, normal, "POST", path, json=bad, headers=fan.headers)
    wrong = {"amount": 1_000, "anonymous": "yes"}
    await same(client, normal, "POST", path, json=wrong, headers=fan.headers)
    for n, c in enumerate((client, normal)):
        r = await c.post(path, json={"amount": 1_000, "message": f"둘 {n}", "anonymous": True},
                         headers={**fan.headers, "Idempotency-Key": f"m-{n}"})
        assert r.status_code == 201, r.text
        assert r.json()["message"] == f"둘 {n}" and r.json()["anonymous"] is True
        again = await c.post(path, json={"amount": 1_000, "message": "다른 말"},
                             headers={**fan.headers, "Idempotency-Key": f"m-{n}"})
        assert again.status_code == 422, again.text
    await settle_all(container)
    await assert_ledger_ok(container)
