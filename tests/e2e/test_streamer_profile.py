"""A streamer's profile (intro and channel link), the directory's search by name, and a
channel's top backers, through the HTTP API on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up

PROFILE = "/api/v1/streamers/me/profile"


async def _patch(client: httpx.AsyncClient, who: Actor, body: dict[str, Any]) -> httpx.Response:
    return await client.patch(PROFILE, headers=who.headers, json=body)


def _refused(r: httpx.Response, field: str) -> str:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/invalid-input")
    assert field in problem["detail"], problem
    detail: str = problem["detail"]
    return detail


# The profile -----------------------------------------------------------------------------

async def test_a_streamer_sets_an_intro_and_a_channel_link_shown_on_the_channel(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer", name="라면왕")
    r = await client.get(PROFILE, headers=streamer.headers)
    assert r.json() == {"intro": "", "link": None, "link_platform": None}
    # Read (and so cached) before the change: the change must still show at once.
    before = (await client.get(f"/api/v1/streamers/{streamer.id}")).json()
    assert (before["intro"], before["link"]) == ("", None)
    assert (await client.get("/api/v1/streamers")).json()["items"][0]["intro"] == ""

    intro = "매일 밤 9시 방송합니다.\n라면 미션 환영!"
    r = await _patch(client, streamer, {"intro": intro,
                                        "link": "HTTPS://Chzzk.Naver.com/abc123def"})
    assert r.status_code == 200, r.text
    assert r.json() == {"intro": intro, "link": "https://chzzk.naver.com/abc123def",
                        "link_platform": "chzzk"}
    shown = (await client.get(f"/api/v1/streamers/{streamer.id}")).json()
    assert shown["intro"] == intro and shown["link"] == "https://chzzk.naver.com/abc123def"
    assert shown["link_platform"] == "chzzk"
    listed = (await client.get("/api/v1/streamers")).json()["items"]
    assert [s["link_platform"] for s in listed if s["id"] == streamer.id] == ["chzzk"]

    # A partial change keeps the other field; "" removes the link.
    r = await _patch(client, streamer, {"link": "https://www.sooplive.co.kr/station/ramen"})
    assert r.json()["intro"] == intro and r.json()["link_platform"] == "soop"
    r = await _patch(client, streamer, {"link": "https://youtu.be/dQw4w9WgXcQ?t=1"})
    assert r.json()["link_platform"] == "youtube"
    r = await _patch(client, streamer, {"link": ""})
    assert r.json() == {"intro": intro, "link": None, "link_platform": None}
    r = await _patch(client, streamer, {"intro": " \u200b\n "})  # blank: no intro
    assert r.status_code == 200 and r.json()["intro"] == ""


@pytest.mark.parametrize(("link", "reason"), [
    ("http://chzzk.naver.com/abc", "https://"),
    ("javascript:alert(1)//chzzk.naver.com/x", "https://"),
    ("ftp://chzzk.naver.com/abc", "https://"),
    ("chzzk.naver.com/abc", "https://"),
    ("//chzzk.naver.com/abc", "https://"),
    ("https:chzzk.naver.com/abc", "SOOP, CHZZK or YouTube"),
    ("https:///chzzk.naver.com/abc", "SOOP, CHZZK or YouTube"),
    ("https://chzzk.naver.com.evil.example/abc", "SOOP, CHZZK or YouTube"),
    ("https://evilchzzk.naver.com/abc", "SOOP, CHZZK or YouTube"),
    ("https://naver.com/abc", "SOOP, CHZZK or YouTube"),
    ("https://twitch.tv/ramen", "SOOP, CHZZK or YouTube"),
    ("https://evil.example/?next=https://youtube.com/@ramen", "SOOP, CHZZK or YouTube"),
    ("https://evil.example#@youtube.com/x", "SOOP, CHZZK or YouTube"),
    ("https://youtube.com@evil.example/x", "user name"),
    ("https://user:pw@youtube.com/@ramen", "user name"),
    ("https://youtube.com:8443/@ramen", "port"),
    ("https://youtube.com:443/@ramen", "port"),
    ("https://youtube.com", "home page"),
    ("https://www.youtube.com/", "home page"),
    ("https://www.youtube.com/@라면왕", "URL characters"),
    ("https://youtu.be/abc def", "URL characters"),
    ("https://youtu.be/abc\\@evil.example", "URL characters"),
    ("https://youtu.be/<script>", "URL characters"),
    ("https://youtu.be/a\nb", "URL characters"),
    ("https://youtu.be/" + "a" * 290, "300"),
])
async def test_a_link_that_is_not_a_known_platforms_channel_is_refused_with_the_reason(
    client: httpx.AsyncClient, container: Container, link: str, reason: str
) -> None:
    streamer = await make_user(container, "streamer")
    await _patch(client, streamer, {"link": "https://chzzk.naver.com/keep"})
    detail = _refused(await _patch(client, streamer, {"intro": "바뀌면 안 됨", "link": link}),
                      "link")
    assert reason in detail, detail
    assert (await client.get(PROFILE, headers=streamer.headers)).json() == {
        "intro": "", "link": "https://chzzk.naver.com/keep", "link_platform": "chzzk"}


async def test_the_intro_follows_the_text_rules(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    assert (await _patch(client, streamer, {"intro": "가" * 500})).status_code == 200
    # Counted after NFC: 500 syllables written as 1,000 jamo still fit.
    r = await _patch(client, streamer, {"intro": "\u1100\u1161" * 500})
    assert r.status_code == 200 and r.json()["intro"] == "가" * 500
    assert "at most 500" in _refused(await _patch(client, streamer, {"intro": "가" * 501}),
                                     "intro")
    assert "control" in _refused(await _patch(client, streamer, {"intro": "a\x00b"}), "intro")
    _refused(await _patch(client, streamer, {"intro": None}), "null")
    _refused(await _patch(client, streamer, {"link": None}), "null")
    for body in ({"intro": 5}, {"link": ["https://youtu.be/x"]}, {"bio": "x"}):
        assert (await _patch(client, streamer, body)).status_code == 422
    assert (await client.get(PROFILE, headers=streamer.headers)).json()["intro"] == "가" * 500


async def test_only_the_streamer_edits_their_own_profile(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    other = await make_user(container, "streamer")
    viewer = await make_user(container)
    await _patch(client, streamer, {"intro": "원래 소개"})
    r = await _patch(client, viewer, {"intro": "해킹"})
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = await client.patch(PROFILE, json={"intro": "해킹"})
    assert r.status_code == 401
    assert (await _patch(client, other, {"intro": "내 소개"})).status_code == 200
    assert (await client.get(f"/api/v1/streamers/{streamer.id}")).json()["intro"] == "원래 소개"
    assert (await client.get(f"/api/v1/streamers/{other.id}")).json()["intro"] == "내 소개"


async def test_the_database_refuses_a_link_that_is_not_https(container: Container) -> None:
    streamer = await make_user(container, "streamer")
    for sql in ("UPDATE channels SET link = 'javascript:alert(1)'",
                f"UPDATE channels SET intro = '{'a' * 501}'"):
        with pytest.raises(Exception, match=r"(?i)check|constraint"):
            async with container.core_db.begin() as conn:
                await conn.execute(text(f"{sql} WHERE streamer_id = {streamer.id}"))


# The directory's search ------------------------------------------------------------------

async def _names(client: httpx.AsyncClient, **params: Any) -> list[str]:
    r = await client.get("/api/v1/streamers", params=params)
    assert r.status_code == 200, r.text
    return [s["display_name"] for s in r.json()["items"]]


async def test_the_directory_searches_names_case_insensitively_and_pages(
    client: httpx.AsyncClient, container: Container
) -> None:
    for name in ("Alpha Cat", "라면왕", "alphabet", "100%_real", "Beta", "ALPHA 라면"):
        await make_user(container, "streamer", name=name)
    await make_user(container, name="alpha viewer")  # viewers have no channel
    assert await _names(client, q="alpha") == ["Alpha Cat", "alphabet", "ALPHA 라면"]
    assert await _names(client, q="ALPHA") == ["Alpha Cat", "alphabet", "ALPHA 라면"]
    assert await _names(client, q="  라면 ") == ["라면왕", "ALPHA 라면"]
    assert await _names(client, q="%") == ["100%_real"]
    assert await _names(client, q="_") == ["100%_real"]
    assert await _names(client, q="'; DROP TABLE members; --") == []
    assert len(await _names(client, q="")) == 6
    assert len(await _names(client)) == 6

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"q": "alpha", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/streamers", params=params)).json()
        seen += [s["display_name"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Alpha Cat", "alphabet", "ALPHA 라면"]


@pytest.mark.parametrize("q", ["a" * 51, "a\x00", "a\u2028b"])
async def test_a_directory_search_that_is_too_long_or_not_text_is_422(
    client: httpx.AsyncClient, container: Container, q: str
) -> None:
    r = await client.get("/api/v1/streamers", params={"q": q})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


# Top backers -----------------------------------------------------------------------------

async def _pledge(client: httpx.AsyncClient, who: Actor, mission: dict[str, Any],
                  amount: int) -> None:
    r = await client.post(f"/api/v1/missions/{mission['id']}/pledges", headers=who.headers,
                          json={"amount": amount})
    assert r.status_code == 201, r.text


async def _act(client: httpx.AsyncClient, who: Actor, mission: dict[str, Any], op: str,
               **body: Any) -> None:
    r = await client.post(f"/api/v1/missions/{mission['id']}/{op}", headers=who.headers,
                          json=body or None)
    assert r.status_code == 200, r.text


async def _top(client: httpx.AsyncClient, streamer: Actor) -> list[tuple[str, int, int]]:
    r = await client.get(f"/api/v1/streamers/{streamer.id}/top-backers")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [b["rank"] for b in items] == list(range(1, len(items) + 1))
    assert all(set(b) == {"rank", "display_name", "total_pledged", "pledge_count"}
               for b in items)
    return [(b["display_name"], b["total_pledged"], b["pledge_count"]) for b in items]


@pytest.mark.parametrize("settings_overrides", [{"proposal_cooldown_seconds": 0}])
async def test_top_backers_count_kept_and_escrowed_pledges_never_refunded_ones(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer", name="라면왕")
    elsewhere = await make_user(container, "streamer")
    a, b, c, d, e = [await make_user(container, name=n)
                     for n in ("가나", "<b>B</b>", "씨", "디", "이")]
    for fan in (a, b, c, d, e):
        await top_up(client, fan, 500_000)

    succeeded = await propose(client, a, streamer, amount=10_000)
    await _pledge(client, b, succeeded, 5_000)
    await _pledge(client, e, succeeded, 5_000)
    await _act(client, streamer, succeeded, "accept")
    await _act(client, streamer, succeeded, "result", outcome="success")

    failed = await propose(client, b, streamer, amount=50_000)
    await _pledge(client, c, failed, 30_000)
    await _act(client, streamer, failed, "accept")
    await _act(client, streamer, failed, "result", outcome="failure")
    rejected = await propose(client, c, streamer, amount=40_000)
    await _act(client, streamer, rejected, "reject")
    cancelled = await propose(client, d, streamer, amount=20_000)
    await _act(client, d, cancelled, "cancel")

    open_one = await propose(client, d, streamer, amount=3_000, duration=86_400)
    await _pledge(client, a, open_one, 2_000)
    await _act(client, streamer, open_one, "accept")
    # An anonymous pledge names nobody, so it is not ranked (the backer's other pledges are).
    r = await client.post(f"/api/v1/missions/{open_one['id']}/pledges", headers=a.headers,
                          json={"amount": 70_000, "anonymous": True})
    assert r.status_code == 201, r.text
    lapsing = await propose(client, c, streamer, amount=100_000, duration=86_400)
    other_channel = await propose(client, b, elsewhere, amount=90_000, duration=86_400)
    await _act(client, elsewhere, other_channel, "accept")

    expected_before = [("씨", 100_000, 1), ("가나", 12_000, 2), ("<b>B</b>", 5_000, 1),
                       ("이", 5_000, 1), ("디", 3_000, 1)]
    assert await _top(client, streamer) == expected_before
    await settle_all(container)  # payout and refunds change nothing here
    assert await _top(client, streamer) == expected_before

    # The pending mission reads expired at its acceptance timeout: its pledge will be
    # refunded, so it stops counting at once, before and after the sweep refunds it.
    clock.advance(3600)
    expected = [("가나", 12_000, 2), ("<b>B</b>", 5_000, 1), ("이", 5_000, 1), ("디", 3_000, 1)]
    assert await _top(client, streamer) == expected
    await settle_all(container)
    assert (await client.get(f"/api/v1/missions/{lapsing['id']}")).json()["status"] == "expired"
    assert await _top(client, streamer) == expected
    assert await _top(client, elsewhere) == [("<b>B</b>", 90_000, 1)]
    await assert_ledger_ok(container)


@pytest.mark.parametrize("settings_overrides", [{"proposal_cooldown_seconds": 0}])
async def test_top_backers_are_the_ten_largest_and_unknown_channels_are_404(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fans = [await make_user(container, name=f"팬{i:02d}") for i in range(12)]
    creator = fans[0]
    await top_up(client, creator, 100_000)
    mission = await propose(client, creator, streamer, amount=1_000, duration=86_400)
    for i, fan in enumerate(fans[1:], start=1):
        await top_up(client, fan, 100_000)
        await _pledge(client, fan, mission, 1_000 * (i + 1))
    top = await _top(client, streamer)
    assert [name for name, _, _ in top] == [f"팬{i:02d}" for i in range(11, 1, -1)]
    assert top[0] == ("팬11", 12_000, 1)
    assert await _top(client, await make_user(container, "streamer")) == []
    viewer = await make_user(container)
    for sid in (viewer.id, 987_654_321):
        r = await client.get(f"/api/v1/streamers/{sid}/top-backers")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/streamers/x1/top-backers")).status_code == 422
    spec = (await client.get("/openapi.json")).json()
    assert "get" in spec["paths"]["/api/v1/streamers/{streamer_id}/top-backers"]
    assert {"get", "patch"} <= set(spec["paths"][PROFILE])
