"""A streamer's optional reason with a reject: checked, stored, shown, and mailed to backers."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from missionlink.adapters.db.core_tables import missions
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.fakes import MemoryMailer
from tests.helpers import assert_ledger_ok, make_user, propose, settle_all, top_up, wallet

REASON = '오늘은 방송 시간이 부족해요 <script>alert("x")</script> & 다음에!'


async def test_reject_with_reason_is_stored_shown_and_mailed(
    client: httpx.AsyncClient, container: Container, mailer: MemoryMailer
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    b = await make_user(container, language="en")
    await top_up(client, a, 30_000)
    await top_up(client, b, 30_000)
    m = await propose(client, a, streamer)
    assert m["reject_reason"] is None
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 5_000},
                          headers=b.headers)
    assert r.status_code == 201, r.text
    key = {"Idempotency-Key": str(uuid.uuid4())}
    # Surrounding whitespace goes; the text is NFC-normalised like every user text.
    r = await client.post(f"/api/v1/missions/{m['id']}/reject",
                          json={"reason": f"  {REASON}  "}, headers=streamer.headers | key)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["reject_reason"] == REASON
    # The same key and body replays; the mission keeps its reason.
    again = await client.post(f"/api/v1/missions/{m['id']}/reject",
                              json={"reason": f"  {REASON}  "}, headers=streamer.headers | key)
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == r.json()
    # A second reject without the key is a state conflict, not a new reason.
    late = await client.post(f"/api/v1/missions/{m['id']}/reject", json={"reason": "다른 사유"},
                             headers=streamer.headers)
    assert late.status_code == 409, late.text
    got = (await client.get(f"/api/v1/missions/{m['id']}")).json()
    assert got["reject_reason"] == REASON
    listed = (await client.get(f"/api/v1/missions?streamer_id={streamer.id}")).json()
    assert listed["items"][0]["reject_reason"] == REASON

    page = await client.get(f"/missions/{m['id']}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(" in page.text and "<script>alert(" not in page.text
    assert "스트리머의 거절 사유" in page.text
    english = await client.get(f"/missions/{m['id']}?lang=en")
    assert "The streamer&#39;s reason:" in english.text

    await settle_all(container)
    assert await wallet(client, a) == {"cash_balance": 30_000, "points_balance": 1000, "debt": 0}
    assert await wallet(client, b) == {"cash_balance": 30_000, "points_balance": 1000, "debt": 0}
    ko = mailer.to(a.email)
    en = mailer.to(b.email)
    assert len(ko) == 1 and len(en) == 1
    # Plain text only: the words go in as written, on one line of their own.
    assert ko[0].get_content_type() == "text/plain" and not ko[0].is_multipart()
    ko_body = ko[0].get_content()
    assert f"스트리머가 남긴 거절 사유: {REASON}\n" in ko_body
    assert "지갑으로 환불된 금액: 10,000원" in ko_body
    en_body = en[0].get_content()
    assert f"The streamer's reason: {REASON}\n" in en_body
    assert "Refunded to your wallet: 5,000 KRW" in en_body
    assert REASON not in str(ko[0]["Subject"])
    await assert_ledger_ok(container)


async def test_reject_without_reason_keeps_working(
    client: httpx.AsyncClient, container: Container, mailer: MemoryMailer, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 40_000)
    for body in (None, {}, {"reason": None}, {"reason": "   "}):
        m = await propose(client, a, streamer)
        kwargs = {} if body is None else {"json": body}
        r = await client.post(f"/api/v1/missions/{m['id']}/reject", headers=streamer.headers,
                              **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 200, (body, r.text)
        assert r.json()["status"] == "rejected" and r.json()["reject_reason"] is None
        # The rejected viewer's cooldown would refuse the next proposal: move past it.
        clock.advance(3600)
    await settle_all(container)
    bodies = [msg.get_content() for msg in mailer.to(a.email)]
    assert len(bodies) == 4 and not any("거절 사유" in b for b in bodies)
    await assert_ledger_ok(container)


@pytest.mark.parametrize(("reason", "words"), [
    ("가" * 201, "at most 200 characters"),
    ("첫 줄\n둘째 줄", "single line"),
    ("bell\u0007", "control characters"),
    ("\ud800", "lone surrogate"),
    (123, "reason"),
])
async def test_bad_reasons_are_refused_with_a_reason_and_change_nothing(
    client: httpx.AsyncClient, container: Container, reason: object, words: str
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 10_000)
    m = await propose(client, a, streamer)
    content = ('{"reason": "\\ud800"}' if reason == "\ud800"
               else httpx.Request("POST", "/", json={"reason": reason}).content)
    r = await client.post(f"/api/v1/missions/{m['id']}/reject", content=content,
                          headers=streamer.headers | {"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert words in r.json()["detail"] and "reason" in r.json()["detail"]
    got = (await client.get(f"/api/v1/missions/{m['id']}")).json()
    assert got["status"] == "pending" and got["reject_reason"] is None


async def test_the_database_keeps_a_reason_on_rejected_missions_only(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    a = await make_user(container)
    await top_up(client, a, 20_000)
    m = await propose(client, a, streamer)
    # Accept ignores a body: the reason never reaches an accepted mission.
    r = await client.post(f"/api/v1/missions/{m['id']}/accept", json={"reason": "x"},
                          headers=streamer.headers)
    assert r.status_code == 200 and r.json()["reject_reason"] is None, r.text
    with pytest.raises(IntegrityError):
        async with container.core_db.begin() as conn:
            await conn.execute(update(missions).where(missions.c.id == m["id"])
                               .values(reject_reason="written behind the API's back"))
    # Only the target streamer may reject, reason or not.
    other = await propose(client, a, streamer)
    r = await client.post(f"/api/v1/missions/{other['id']}/reject", json={"reason": "x"},
                          headers=a.headers)
    assert r.status_code == 403, r.text
    assert (await client.get(f"/api/v1/missions/{other['id']}")).json()["reject_reason"] is None
