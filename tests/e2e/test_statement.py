"""The wallet read like a bank statement: pledges in escrow, journal lines with titles and
words in the reader's language, a payout's breakdown, missions' outcomes, the CSV statement."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up

BOM = "\ufeff"
@pytest.fixture
def clock() -> FrozenClock:
    """Microseconds in every stored time, so the statement must drop them. Taken when the
    test starts, not when the file is imported: access tokens are checked against the
    real time too, and a long run reaches this file many minutes after collecting it."""
    return FrozenClock(datetime.now(UTC).replace(microsecond=654_321))


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"proposal_cooldown_seconds": 0}


async def _post(client: httpx.AsyncClient, who: Actor, path: str, body: Any = None) -> Any:
    r = await client.post(f"/api/v1/missions/{path}", json=body, headers=who.headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def _lines(client: httpx.AsyncClient, who: Actor, query: str = "",
                 headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v1/wallet/transactions?limit=100{query}",
                         headers={**who.headers, **(headers or {})})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _csv(client: httpx.AsyncClient, who: Actor, query: str = "",
               headers: dict[str, str] | None = None) -> httpx.Response:
    r = await client.get(f"/api/v1/wallet/transactions?format=csv{query}",
                         headers={**who.headers, **(headers or {})})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    return r


def _rows(r: httpx.Response) -> list[list[str]]:
    assert r.content.startswith(BOM.encode()), "Excel needs the UTF-8 byte order mark"
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


async def test_escrow_lists_unsettled_pledges_per_mission_with_titles_and_deadlines(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer", name="라면왕")
    fan = await make_user(container)
    other = await make_user(container)
    for who in (fan, other):
        await top_up(client, who, 100_000)
    mine = await propose(client, fan, streamer, amount=10_000, title="매운 라면 먹기")
    cofunded = await propose(client, other, streamer, amount=5_000, title="노래 부르기")
    await _post(client, fan, f"{cofunded['id']}/pledges", {"amount": 3_000})
    await _post(client, fan, f"{cofunded['id']}/pledges", {"amount": 2_000})
    settled = await propose(client, fan, streamer, amount=4_000, title="거절되고 정산됨")
    await _post(client, streamer, f"{settled['id']}/reject")
    await settle_all(container)
    settling = await propose(client, fan, streamer, amount=7_000, title="거절, 정산 전")
    await _post(client, streamer, f"{settling['id']}/reject")

    r = await client.get("/api/v1/wallet/escrow", headers=fan.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 10_000 + 5_000 + 7_000
    got = [(x["mission_id"], x["mission_title"], x["amount"], x["pledge_count"],
            x["mission_status"], x["outcome"]) for x in body["items"]]
    assert got == [
        (settling["id"], "거절, 정산 전", 7_000, 1, "rejected", "settling"),
        (cofunded["id"], "노래 부르기", 5_000, 2, "pending", "open"),
        (mine["id"], "매운 라면 먹기", 10_000, 1, "pending", "open"),
    ]
    first = body["items"][2]
    assert first["deadline_at"] == mine["deadline_at"]
    assert first["accept_by"] == mine["accept_by"] and first["result_by"]
    assert first["streamer_name"] == "라면왕"

    # Paged, with the total over every page.
    r = await client.get("/api/v1/wallet/escrow?limit=2", headers=fan.headers)
    page = r.json()
    assert len(page["items"]) == 2 and page["total"] == 22_000 and page["next_cursor"]
    r = await client.get(f"/api/v1/wallet/escrow?limit=2&cursor={page['next_cursor']}",
                         headers=fan.headers)
    assert [x["mission_id"] for x in r.json()["items"]] == [mine["id"]]

    # Settled: the escrow is empty for that mission, the cash is back.
    await settle_all(container)
    after = (await client.get("/api/v1/wallet/escrow", headers=fan.headers)).json()
    assert after["total"] == 15_000
    assert settling["id"] not in {x["mission_id"] for x in after["items"]}
    assert (await client.get("/api/v1/wallet/escrow")).status_code == 401
    await assert_ledger_ok(container)


async def test_journal_lines_carry_titles_labels_and_a_payout_breakdown(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container, language="en")
    await top_up(client, fan, 50_000)
    won = await propose(client, fan, streamer, amount=12_345, title="성공할 미션")
    refunded = await propose(client, fan, streamer, amount=5_000, title="거절될 미션")
    await _post(client, fan, f"{refunded['id']}/pledges", {"amount": 2_000})
    await _post(client, streamer, f"{won['id']}/accept")
    await _post(client, streamer, f"{won['id']}/result", {"outcome": "success"})
    await _post(client, streamer, f"{refunded['id']}/reject")
    settling = (await client.get(f"/api/v1/missions/{won['id']}")).json()
    assert settling["outcome"] == "settling" and settling["payout"] is None
    await settle_all(container)

    # The streamer (Korean by default): the payout line, its title and its breakdown.
    lines = await _lines(client, streamer)
    payout = next(x for x in lines if x["kind"] == "payout")
    assert payout["mission_title"] == "성공할 미션"
    assert payout["kind_label"] == "지급" and payout["counterparty_label"] == "미션 보관금"
    assert payout["payout"] == {"gross": 12_345, "fee": 1_234, "fee_bps": 1000, "net": 11_111}
    assert payout["amount"] == 11_111 and payout["counterparty"] == f"mission:{won['id']}:escrow"
    assert all(x["payout"] is None for x in lines if x["kind"] != "payout")
    english = await _lines(client, streamer, "&lang=en")
    assert next(x for x in english if x["kind"] == "payout")["counterparty_label"] == (
        "Mission escrow")
    browser = await _lines(client, streamer, headers={"Accept-Language": "en-US,en;q=0.9"})
    assert next(x for x in browser if x["kind"] == "payout")["kind_label"] == "Payout"

    # The backer's own language (English) without asking; no ledger names in the labels.
    lines = await _lines(client, fan)
    refunds = [x for x in lines if x["kind"] == "refund"]
    assert [(x["mission_title"], x["amount"]) for x in refunds] == [("거절될 미션", 2_000),
                                                                   ("거절될 미션", 5_000)]
    assert {x["counterparty_label"] for x in refunds} == {"Mission escrow"}
    topup = next(x for x in lines if x["kind"] == "topup")
    assert topup["counterparty_label"] == "Test payment" and topup["mission_title"] is None
    assert not any(":" in x["counterparty_label"] for x in lines)
    korean = await _lines(client, fan, "&lang=ko")
    assert next(x for x in korean if x["kind"] == "topup")["counterparty_label"] == "테스트 결제"

    # The missions API: what came of each, and the payout where one was made.
    got = (await client.get(f"/api/v1/missions/{won['id']}")).json()
    assert got["outcome"] == "paid_out"
    assert got["payout"] == {"gross": 12_345, "fee": 1_234, "fee_bps": 1000, "net": 11_111}
    got = (await client.get(f"/api/v1/missions/{refunded['id']}")).json()
    assert got["outcome"] == "refunded" and got["payout"] is None
    listed = (await client.get(f"/api/v1/missions?streamer_id={streamer.id}")).json()["items"]
    assert {m["id"]: m["outcome"] for m in listed} == {won["id"]: "paid_out",
                                                       refunded["id"]: "refunded"}
    await assert_ledger_ok(container)


def _kst(at: datetime) -> str:
    return (at + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")


async def test_csv_statement_reads_like_a_bank_statement(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    start = clock.now()
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 30_000)
    clock.advance(60)
    evil = "=HYPERLINK(\"http://evil.example\",\"click\")"
    m = await propose(client, fan, streamer, amount=10_000, title=evil)
    clock.advance(60)
    await _post(client, fan, f"{m['id']}/pledges", {"amount": 2_000})
    plus = await propose(client, fan, streamer, amount=1_000, title="+1 라면")
    await _post(client, streamer, f"{plus['id']}/reject")
    await settle_all(container)

    rows = _rows(await _csv(client, fan))
    assert rows[0] == ["거래 일시 (KST)", "구분", "미션", "상대 계정", "입금", "출금", "통화",
                       "거래 후 잔액", "거래 번호"]
    body = rows[1:]
    assert body[0][0] == _kst(start + timedelta(seconds=120))
    assert all("." not in r[0] and "T" not in r[0] for r in body)
    cash = [r for r in body if r[6] == "원"]
    # Newest first; the balance after each line adds up from the oldest.
    assert [(r[1], r[4], r[5], r[7]) for r in reversed(cash)] == [
        ("충전", "30000", "", "30000"),
        ("후원", "", "10000", "20000"),
        ("후원", "", "2000", "18000"),
        ("후원", "", "1000", "17000"),
        ("환불", "1000", "", "18000"),
    ]
    assert cash[-1][0] == _kst(start)
    titled = {r[2] for r in cash if r[2]}
    assert titled == {"'" + evil, "'+1 라면"}, "formulas are written as text"
    assert not any(c.startswith(("=", "+", "-", "@")) for r in body for c in r)
    assert {r[3] for r in cash} == {"테스트 결제", "미션 보관금"}
    points = [r for r in body if r[6] == "포인트"]
    assert points and points[-1][7] == points[-1][4]  # the signup points, from zero

    english = _rows(await _csv(client, fan, "&tz=UTC", {"Accept-Language": "en"}))
    assert english[0] == ["Date (UTC)", "Type", "Mission", "Counterparty", "In", "Out",
                          "Currency", "Balance", "Reference"]
    topup = next(r for r in english if r[1] == "Top-up")
    assert topup[0] == start.strftime("%Y-%m-%d %H:%M:%S") and topup[6] == "KRW"
    assert topup[3] == "Test payment"
    assert _rows(await _csv(client, fan, "&lang=en"))[0][0] == "Date (KST)"
    for bad in ("Mars/Olympus", "../etc", "A" * 65):
        r = await client.get(f"/api/v1/wallet/transactions?format=csv&tz={bad}",
                             headers=fan.headers)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")

    raw = await client.get("/api/v1/wallet/transactions?format=raw_csv", headers=fan.headers)
    assert raw.status_code == 200 and not raw.content.startswith(BOM.encode())
    old = list(csv.DictReader(io.StringIO(raw.text)))
    assert list(old[0]) == ["id", "created_at", "kind", "currency", "amount", "account",
                            "counterparty", "mission_id"]
    assert {r["account"] for r in old} == {f"user:{fan.id}:cash", f"user:{fan.id}:points"}
    assert len(old) == len(body)
