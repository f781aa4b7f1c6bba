"""The admin operations endpoint and dead-letter replay, on SQLite and PostgreSQL.

An admin sees the figures move through a mission's life (escrow, open missions, outbox
backlog, requests), a broken handler and a broken mail server turn into dead letters, and
replaying them through the API queues them again; a second replay changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.workers import handlers
from missionlink.workers.runner import Worker
from tests.fakes import MemoryMailer
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up

OPS = "/api/v1/admin/operations"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"worker_max_attempts": 2}


async def _ops(client: httpx.AsyncClient, admin: Actor) -> dict[str, Any]:
    r = await client.get(OPS, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


async def _replay(client: httpx.AsyncClient, admin: Actor, dead_id: str,
                  key: str | None = None) -> httpx.Response:
    headers = {**admin.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post(f"/api/v1/admin/dead-letters/{dead_id}/replay", headers=headers)


async def _work(container: Container, clock: FrozenClock, rounds: int = 4) -> None:
    worker = Worker(container)
    for _ in range(rounds):
        await worker.run_until_idle()
        clock.advance(3600)


async def test_only_admins_see_operations(client: httpx.AsyncClient, container: Container) -> None:
    viewer = await make_user(container)
    streamer = await make_user(container, "streamer")
    r = await client.get(OPS)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.headers["content-type"].startswith("application/problem+json")
    for who in (viewer, streamer):
        r = await client.get(OPS, headers=who.headers)
        assert r.status_code == 403, r.text
        assert r.json()["type"].endswith("/forbidden")
        r = await client.post("/api/v1/admin/dead-letters/event:1/replay", headers=who.headers)
        assert r.status_code == 403, r.text
    r = await client.post("/api/v1/admin/dead-letters/event:1/replay")
    assert r.status_code == 401
    admin = await make_user(container, "admin")
    for bad in ("1", "mail:1", "event:x", "event:" + "9" * 19):
        r = await client.post(f"/api/v1/admin/dead-letters/{bad}/replay", headers=admin.headers)
        assert r.status_code == 422, (bad, r.text)
    for missing in ("event:999", "email:999"):
        r = await _replay(client, admin, missing)
        assert r.status_code == 404, r.text


async def test_the_figures_follow_a_mission_and_dead_letters_replay_once(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, mailer: MemoryMailer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = await make_user(container, "admin")
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await settle_all(container)
    before = await _ops(client, admin)
    assert before["escrow_krw"] == 0 and before["missions"]["open"] == 0
    assert before["outbox"]["backlog"] == 0
    assert before["dead_letters"] == {"events": 0, "emails": 0, "items": [], "limit": 50}
    assert before["process"]["worker_in_process"] is False
    assert before["process"]["reconcile"]["ran"] in (True, False)  # other tests' processes

    # A proposal: money in escrow, an open mission, events waiting for the worker.
    await top_up(client, fan, 50_000)
    mission = await propose(client, fan, streamer, amount=12_000)
    r = await client.post(f"/api/v1/missions/{mission['id']}/pledges", headers=fan.headers,
                          json={"amount": 3_000})
    assert r.status_code == 201, r.text
    clock.advance(30)
    moved = await _ops(client, admin)
    assert moved["escrow_krw"] == 15_000
    assert moved["missions"]["open"] == 1 and moved["missions"]["by_status"]["pending"] == 1
    assert moved["outbox"]["backlog"] >= 2 and moved["outbox"]["oldest_age_seconds"] >= 30
    requests = moved["process"]["requests"]
    assert requests["total"] >= before["process"]["requests"]["total"] + 3
    assert requests["per_second"] is None or requests["per_second"] >= 0
    await settle_all(container)
    assert (await _ops(client, admin))["outbox"] == {"backlog": 0, "oldest_age_seconds": 0.0}

    # Settlement breaks: the rejection's event is dead-lettered, the money stays in escrow.
    async def broken(*_: Any) -> None:
        raise RuntimeError("settlement exploded")

    monkeypatch.setitem(handlers.HANDLERS, "mission.ended", [("settlement", broken)])
    r = await client.post(f"/api/v1/missions/{mission['id']}/reject", headers=streamer.headers)
    assert r.status_code == 200, r.text
    await _work(container, clock)
    dead = await _ops(client, admin)
    assert dead["dead_letters"]["events"] == 1 and dead["escrow_krw"] == 15_000
    assert dead["missions"]["open"] == 0 and dead["missions"]["awaiting_settlement"] == 1
    [item] = dead["dead_letters"]["items"]
    assert item["kind"] == "event" and item["topic"] == "mission.ended"
    assert item["mission_id"] == mission["id"] and item["user_id"] is None
    assert item["id"].startswith("event:") and "exploded" in item["error"]
    monkeypatch.undo()

    # The mail server is down too: the result emails fail for good.
    mailer.fail_next = 1_000
    r = await _replay(client, admin, item["id"], key="replay-1")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": item["id"], "kind": "event", "replayed": True, "status": "queued"}
    again = await _replay(client, admin, item["id"], key="replay-1")
    assert again.json() == r.json() and again.headers["idempotent-replayed"] == "true"
    for key in ("replay-2", None):
        later = await _replay(client, admin, item["id"], key=key)
        assert later.status_code == 200, later.text
        assert later.json()["replayed"] is False
    await _work(container, clock, rounds=6)
    failed = await _ops(client, admin)
    assert failed["escrow_krw"] == 0 and failed["missions"]["awaiting_settlement"] == 0
    assert failed["dead_letters"]["events"] == 0
    assert failed["emails"]["failed"] == 2 == failed["dead_letters"]["emails"]  # fan, streamer
    emails = [i for i in failed["dead_letters"]["items"] if i["kind"] == "email"]
    assert {e["user_id"] for e in emails} == {fan.id, streamer.id}
    assert all(fan.email not in str(e) and streamer.email not in str(e) for e in emails)

    # Replayed emails go out once the mail server is back, under their Message-ID.
    mailer.fail_next = 0
    for e in emails:
        first = await _replay(client, admin, e["id"])
        assert first.json()["replayed"] is True, first.text
        second = await _replay(client, admin, e["id"])
        assert second.json() == {**first.json(), "replayed": False, "status": "queued"}
    await _work(container, clock)
    done = await _ops(client, admin)
    assert done["emails"]["failed"] == 0 and done["emails"]["sent"] == 2
    assert done["dead_letters"]["items"] == []
    assert len(mailer.sent) == 2
    await assert_ledger_ok(container)


async def test_the_schema_documents_the_admin_endpoints(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    get = spec["paths"][OPS]["get"]
    assert get["security"] == [{"HTTPBearer": []}]
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Operations")
    post = spec["paths"]["/api/v1/admin/dead-letters/{dead_letter_id}/replay"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])


async def test_the_page_renders_in_both_languages_under_the_page_policy(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/admin/operations")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    korean = r.text
    assert "운영 현황" in korean and "데드 레터" in korean and "보관금" in korean
    assert "이 API 프로세스의 수치입니다" in korean
    # The figures are filled in by /static/app.js for admins; no inline script runs.
    assert "<script>" not in korean and " on" + "click=" not in korean
    assert 'data-roles="admin" hidden' in korean
    english = (await client.get("/admin/operations", params={"lang": "en"})).text
    assert "Dead letters" in english and "Money in escrow" in english
    assert not re.search("[가-힣]", english.replace("한국어", ""))
    assert '<a href="/admin/operations" data-roles="admin" hidden>' in (
        await client.get("/")).text
