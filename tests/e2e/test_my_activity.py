"""GET /api/v1/me/missions, /pledges and /bets: the caller's own activity with outcomes."""

from __future__ import annotations

from typing import Any

import httpx

from missionlink.bootstrap import Container
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up

ROUTES = ("missions", "pledges", "bets")


async def _all(client: httpx.AsyncClient, who: Actor, what: str, limit: int) -> list[Any]:
    """Every item of a list, walking its cursors one page at a time."""
    items: list[Any] = []
    cursor = None
    for _ in range(50):
        query = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        sep = "&" if "?" in what else "?"
        r = await client.get(f"/api/v1/me/{what}{sep}{query}", headers=who.headers)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


async def _post(client: httpx.AsyncClient, who: Actor, path: str, body: Any = None) -> Any:
    r = await client.post(f"/api/v1/missions/{path}", json=body, headers=who.headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_my_activity_lists_outcomes_newest_first_after_settlement(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    b = await make_user(container)
    await top_up(client, a, 100_000)
    await top_up(client, b, 100_000)
    won = await propose(client, a, streamer, title="성공할 미션")
    rejected = await propose(client, b, streamer, title="거절될 <b>미션</b>")
    failed = await propose(client, b, streamer, title="실패할 미션")
    await _post(client, a, f"{rejected['id']}/pledges", {"amount": 3_000})
    await _post(client, a, f"{failed['id']}/pledges", {"amount": 4_000})
    await _post(client, a, f"{won['id']}/bets", {"side": "success", "points": 100})
    await _post(client, b, f"{won['id']}/bets", {"side": "failure", "points": 300})
    await _post(client, a, f"{failed['id']}/bets", {"side": "success", "points": 50})
    await _post(client, b, f"{failed['id']}/bets", {"side": "failure", "points": 30})
    await _post(client, a, f"{rejected['id']}/bets", {"side": "failure", "points": 20})
    open_one = await propose(client, a, streamer, title="아직 열린 미션")

    # Before anything ends: all open.
    pledges = await _all(client, a, "pledges", 100)
    assert {p["outcome"] for p in pledges} == {"open"}

    await _post(client, streamer, f"{won['id']}/accept")
    await _post(client, streamer, f"{won['id']}/result", {"outcome": "success"})
    await _post(client, streamer, f"{failed['id']}/accept")
    await _post(client, streamer, f"{failed['id']}/result", {"outcome": "failure"})
    await _post(client, streamer, f"{rejected['id']}/reject", {"reason": "시간이 없어요"})
    bets = await _all(client, a, "bets", 100)
    assert {x["outcome"] for x in bets} == {"settling"}
    await settle_all(container)

    missions = await _all(client, a, "missions", 1)
    assert [(m["id"], m["outcome"]) for m in missions] == [
        (open_one["id"], "open"), (won["id"], "paid_out")]
    assert missions[1]["title"] == "성공할 미션" and missions[1]["status"] == "succeeded"

    pledges = await _all(client, a, "pledges", 2)
    got = [(p["mission_id"], p["amount"], p["outcome"], p["refunded"]) for p in pledges]
    assert got == [
        (open_one["id"], 10_000, "open", 0),
        (failed["id"], 4_000, "refunded", 4_000),
        (rejected["id"], 3_000, "refunded", 3_000),
        (won["id"], 10_000, "paid_out", 0),
    ]
    by_mission = {p["mission_id"]: p for p in pledges}
    assert by_mission[rejected["id"]]["mission_title"] == "거절될 <b>미션</b>"
    assert by_mission[rejected["id"]]["reject_reason"] == "시간이 없어요"
    assert by_mission[rejected["id"]]["mission_status"] == "rejected"
    assert by_mission[failed["id"]]["settlement"] == "settled"

    bets = await _all(client, a, "bets", 1)
    got = [(x["mission_id"], x["side"], x["points"], x["outcome"], x["points_back"])
           for x in bets]
    assert got == [
        (rejected["id"], "failure", 20, "refunded", 20),
        (failed["id"], "success", 50, "lost", 0),
        # 100 of a 400-point pool, all of it to the one winning side.
        (won["id"], "success", 100, "won", 400),
    ]
    # The results: only what has been settled, still newest first.
    settled = await _all(client, a, "pledges?settled=true", 2)
    assert [p["mission_id"] for p in settled] == [failed["id"], rejected["id"], won["id"]]
    settled_bets = await _all(client, a, "bets?settled=true", 2)
    assert len(settled_bets) == 3
    r = await client.get("/api/v1/me/bets?settled=maybe", headers=a.headers)
    assert r.status_code == 422, r.text
    other = await _all(client, b, "bets", 10)
    assert [(x["mission_id"], x["outcome"], x["points_back"]) for x in other] == [
        (failed["id"], "won", 80), (won["id"], "lost", 0)]
    # Each caller sees only their own: b's missions, none of a's.
    assert {m["creator_id"] for m in await _all(client, b, "missions", 10)} == {b.id}
    await assert_ledger_ok(container)


async def test_my_activity_is_for_the_caller_only_and_checks_its_paging(
    client: httpx.AsyncClient, container: Container
) -> None:
    viewer = await make_user(container)
    for what in ROUTES:
        r = await client.get(f"/api/v1/me/{what}")
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        r = await client.get(f"/api/v1/me/{what}",
                             headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401, r.text
        for query in ("limit=0", "limit=101", "cursor=%%%", "cursor=bm90LWFuLWlk"):
            r = await client.get(f"/api/v1/me/{what}?{query}", headers=viewer.headers)
            assert r.status_code == 422, (what, query, r.text)
            assert r.json()["detail"]
        r = await client.get(f"/api/v1/me/{what}", headers=viewer.headers)
        assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}


async def test_my_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    for what in ROUTES:
        op = doc["paths"][f"/api/v1/me/{what}"]["get"]
        assert {p["name"] for p in op["parameters"]} >= {"limit", "cursor"}
        # Asks for the bearer token as every signed-in route does.
        assert op.get("security") == doc["paths"]["/api/v1/wallet"]["get"].get("security")
        assert "items" in op["description"] or "outcome" in op["description"]
    reject = doc["paths"]["/api/v1/missions/{mission_id}/reject"]["post"]
    assert "requestBody" in reject and not reject["requestBody"].get("required", False)
