"""Fan board: posts and comments per channel, through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from missionlink.bootstrap import Container
from tests.helpers import Actor, make_user, settle_all, top_up


async def _post(client: httpx.AsyncClient, who: Actor, streamer: Actor, title: str = "안녕하세요",
                body: str = "첫 글입니다", **extra: Any) -> dict[str, Any]:
    r = await client.post(f"/api/v1/channels/{streamer.id}/posts", headers=who.headers,
                          json={"title": title, "body": body, **extra})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _comment(client: httpx.AsyncClient, who: Actor, post_id: int,
                   body: str = "좋아요") -> dict[str, Any]:
    r = await client.post(f"/api/v1/posts/{post_id}/comments", headers=who.headers,
                          json={"body": body})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _titles(client: httpx.AsyncClient, streamer: Actor, **params: Any) -> list[str]:
    r = await client.get(f"/api/v1/channels/{streamer.id}/posts", params=params)
    assert r.status_code == 200, r.text
    return [p["title"] for p in r.json()["items"]]


async def test_lists_posts_newest_first_with_comment_counts(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container, name="라면왕")
    first = await _post(client, fan, streamer, "first")
    second = await _post(client, fan, streamer, "second")
    await _comment(client, fan, first["id"])
    await _comment(client, streamer, first["id"])
    gone = await _comment(client, fan, first["id"])
    assert (await client.delete(f"/api/v1/comments/{gone['id']}", headers=fan.headers)
            ).status_code == 204
    r = await client.get(f"/api/v1/channels/{streamer.id}/posts")
    items = r.json()["items"]
    assert [p["id"] for p in items] == [second["id"], first["id"]]
    assert [p["comment_count"] for p in items] == [0, 2]
    assert items[0]["author_id"] == fan.id and items[0]["author_display_name"] == "라면왕"
    assert r.json()["next_cursor"] is None
    got = (await client.get(f"/api/v1/posts/{first['id']}")).json()
    assert got["comment_count"] == 2 and got["body"] == "첫 글입니다"
    comments = (await client.get(f"/api/v1/posts/{first['id']}/comments")).json()["items"]
    assert [c["author_id"] for c in comments] == [streamer.id, fan.id]


async def test_pages_stay_stable_while_new_posts_arrive(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    for i in range(5):
        await _post(client, fan, streamer, f"post {i}")
    url = f"/api/v1/channels/{streamer.id}/posts"
    page1 = (await client.get(url, params={"limit": 2})).json()
    assert [p["title"] for p in page1["items"]] == ["post 4", "post 3"]
    await _post(client, fan, streamer, "post 5 (new)")
    page2 = (await client.get(url, params={"limit": 2, "cursor": page1["next_cursor"]})).json()
    assert [p["title"] for p in page2["items"]] == ["post 2", "post 1"]
    page3 = (await client.get(url, params={"limit": 2, "cursor": page2["next_cursor"]})).json()
    assert [p["title"] for p in page3["items"]] == ["post 0"]
    assert page3["next_cursor"] is None
    assert (await _titles(client, streamer, limit=1)) == ["post 5 (new)"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"cursor": "!!"},
                                    {"cursor": "bm90LWEtbnVtYmVy"}, {"q": "x" * 101}])
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, container: Container, params: dict[str, Any]
) -> None:
    streamer = await make_user(container, "streamer")
    r = await client.get(f"/api/v1/channels/{streamer.id}/posts", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_search_finds_korean_and_english_substrings(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    other = await make_user(container, "streamer")
    fan = await make_user(container)
    await _post(client, fan, streamer, "매운 라면 먹방 후기", "국물이 최고")
    await _post(client, fan, streamer, "오늘의 메뉴", "저녁은 신라면으로")
    await _post(client, fan, streamer, "Ramen Night", "spicy noodles")
    await _post(client, fan, streamer, "100% win", "a_b literal")
    await _post(client, fan, other, "라면 in another channel", "not here")
    assert await _titles(client, streamer, q="라면") == ["오늘의 메뉴", "매운 라면 먹방 후기"]
    assert await _titles(client, streamer, q="RAMEN") == ["Ramen Night"]
    assert await _titles(client, streamer, q="Noodle") == ["Ramen Night"]
    assert await _titles(client, streamer, q="%") == ["100% win"]
    assert await _titles(client, streamer, q="a_b") == ["100% win"]
    assert await _titles(client, streamer, q="짜장") == []
    assert len(await _titles(client, streamer, q="  ")) == 4
    page = (await client.get(f"/api/v1/channels/{streamer.id}/posts",
                             params={"q": "라면", "limit": 1})).json()
    rest = await _titles(client, streamer, q="라면", cursor=page["next_cursor"])
    assert [p["title"] for p in page["items"]] + rest == ["오늘의 메뉴", "매운 라면 먹방 후기"]


async def test_posting_needs_a_user_and_an_existing_channel(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    viewer = await make_user(container)
    body = {"title": "t", "body": "b"}
    r = await client.post(f"/api/v1/channels/{streamer.id}/posts", json=body)
    assert r.status_code == 401
    for missing in (viewer.id, 999_999, 2**63 + 5):
        r = await client.post(f"/api/v1/channels/{missing}/posts", json=body,
                              headers=viewer.headers)
        assert r.status_code in (404, 422), r.text
    r = await client.get("/api/v1/channels/999999/posts")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/posts/999999")).status_code == 404


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        ({"title": "t" * 200, "body": "b" * 20_000}, True),
        ({"title": "가" * 200, "body": "나"}, True),
        ({"title": "", "body": "b"}, False),
        ({"title": "   ", "body": "b"}, False),
        ({"title": "t" * 201, "body": "b"}, False),
        ({"title": "t", "body": ""}, False),
        ({"title": "t", "body": "b" * 20_001}, False),
        ({"title": 12, "body": "b"}, False),
        ({"title": "t", "body": ["b"]}, False),
        ({"title": "t"}, False),
        ({"title": "t", "body": "b", "author_id": 1}, False),
        ({"title": "t\x00", "body": "b"}, False),
        ({"title": "t", "body": "\ud800"}, False),
    ],
)
async def test_post_lengths_and_types_are_enforced(
    client: httpx.AsyncClient, container: Container, payload: dict[str, Any], ok: bool
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    # json.dumps escapes non-ASCII, so even a lone surrogate reaches the server as JSON.
    r = await client.post(f"/api/v1/channels/{streamer.id}/posts", content=json.dumps(payload),
                          headers={**fan.headers, "Content-Type": "application/json"})
    assert r.status_code == (201 if ok else 422), r.text
    if ok:
        assert r.json()["title"] == payload["title"] and r.json()["body"] == payload["body"]


async def test_comment_lengths_are_enforced(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    post = await _post(client, fan, streamer)
    url = f"/api/v1/posts/{post['id']}/comments"
    for body, status in (("c" * 2000, 201), ("c" * 2001, 422), ("", 422), (" \n", 422),
                         (5, 422)):
        r = await client.post(url, json={"body": body}, headers=fan.headers)
        assert r.status_code == status, (body, r.text)
    r = await client.post(url, json={"body": "x", "extra": 1}, headers=fan.headers)
    assert r.status_code == 422
    assert (await client.post(url, json={"body": "x"})).status_code == 401


async def test_only_the_author_edits_and_edits_are_partial(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan, other = await make_user(container), await make_user(container)
    admin = await make_user(container, "admin")
    post = await _post(client, fan, streamer, "원래 제목", "원래 본문")
    url = f"/api/v1/posts/{post['id']}"
    for who in (other, streamer, admin):
        r = await client.patch(url, json={"title": "hijack"}, headers=who.headers)
        assert r.status_code == 403, r.text
    assert (await client.patch(url, json={"title": "x"})).status_code == 401
    r = await client.patch(url, json={"title": "고친 제목"}, headers=fan.headers)
    assert r.status_code == 200 and r.json()["title"] == "고친 제목"
    assert r.json()["body"] == "원래 본문"
    r = await client.patch(url, json={"body": "고친 본문"}, headers=fan.headers)
    assert r.json()["title"] == "고친 제목" and r.json()["body"] == "고친 본문"
    for bad in ({}, {"title": None}, {"title": ""}, {"body": "b" * 20_001}, {"x": "y"}):
        r = await client.patch(url, json=bad, headers=fan.headers)
        assert r.status_code == 422, (bad, r.text)
    got = (await client.get(url)).json()
    assert got["title"] == "고친 제목" and got["body"] == "고친 본문"


@pytest.mark.parametrize("deleter", ["author", "streamer", "admin"])
async def test_author_streamer_and_admin_delete_posts(
    client: httpx.AsyncClient, container: Container, deleter: str
) -> None:
    streamer = await make_user(container, "streamer")
    fan, other = await make_user(container), await make_user(container)
    other_streamer = await make_user(container, "streamer")
    admin = await make_user(container, "admin")
    post = await _post(client, fan, streamer)
    comment = await _comment(client, other, post["id"])
    url = f"/api/v1/posts/{post['id']}"
    for who in (other, other_streamer):
        assert (await client.delete(url, headers=who.headers)).status_code == 403
    who = {"author": fan, "streamer": streamer, "admin": admin}[deleter]
    assert (await client.delete(url, headers=who.headers)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.patch(url, json={"title": "x"}, headers=fan.headers)).status_code == 404
    assert (await client.delete(url, headers=fan.headers)).status_code == 404
    assert (await client.get(f"{url}/comments")).status_code == 404
    r = await client.post(f"{url}/comments", json={"body": "x"}, headers=fan.headers)
    assert r.status_code == 404
    r = await client.delete(f"/api/v1/comments/{comment['id']}", headers=other.headers)
    assert r.status_code == 404
    assert await _titles(client, streamer) == []


async def test_author_streamer_and_admin_delete_comments(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan, other = await make_user(container), await make_user(container)
    admin = await make_user(container, "admin")
    post = await _post(client, fan, streamer)
    mine = await _comment(client, other, post["id"], "mine")
    theirs = await _comment(client, other, post["id"], "theirs")
    third = await _comment(client, other, post["id"], "third")
    # The post's author is not the comment's author and does not moderate the channel.
    r = await client.delete(f"/api/v1/comments/{mine['id']}", headers=fan.headers)
    assert r.status_code == 403
    for comment, who in ((mine, other), (theirs, streamer), (third, admin)):
        r = await client.delete(f"/api/v1/comments/{comment['id']}", headers=who.headers)
        assert r.status_code == 204
        r = await client.delete(f"/api/v1/comments/{comment['id']}", headers=who.headers)
        assert r.status_code == 404
    assert (await client.get(f"/api/v1/posts/{post['id']}/comments")).json()["items"] == []
    assert (await client.get(f"/api/v1/posts/{post['id']}")).json()["comment_count"] == 0


async def test_markup_is_stored_as_plain_text_and_returned_verbatim(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    title = '<script>alert("xss")</script>'
    body = "<img src=x onerror=alert(1)> & \"quotes\" 'single'"
    post = await _post(client, fan, streamer, title, body)
    r = await client.get(f"/api/v1/posts/{post['id']}")
    assert r.headers["content-type"] == "application/json"
    assert r.json()["title"] == title and r.json()["body"] == body
    comment = await _comment(client, fan, post["id"], "<b>bold</b>")
    assert comment["body"] == "<b>bold</b>"


async def test_idempotency_key_replays_a_post(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    headers = {**fan.headers, "Idempotency-Key": "post-1"}
    url = f"/api/v1/channels/{streamer.id}/posts"
    first = await client.post(url, json={"title": "t", "body": "b"}, headers=headers)
    again = await client.post(url, json={"title": "t", "body": "b"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(await _titles(client, streamer)) == 1


async def test_each_mission_gets_a_thread_that_reports_its_result(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container, name="제안자")
    await top_up(client, creator, 20_000)
    r = await client.post("/api/v1/missions", headers=creator.headers, json={
        "streamer_id": streamer.id, "title": "라면 10봉 먹기", "description": "도전!",
        "amount": 10_000, "duration_seconds": 3600})
    mission = r.json()
    await settle_all(container)
    posts = (await client.get(f"/api/v1/channels/{streamer.id}/posts")).json()["items"]
    assert len(posts) == 1
    thread = posts[0]
    assert thread["title"] == "라면 10봉 먹기" and thread["mission_id"] == mission["id"]
    assert thread["author_id"] == creator.id and "도전!" in thread["body"]
    await client.post(f"/api/v1/missions/{mission['id']}/accept", headers=streamer.headers)
    await client.post(f"/api/v1/missions/{mission['id']}/result", json={"outcome": "success"},
                      headers=streamer.headers)
    await settle_all(container)
    comments = (await client.get(f"/api/v1/posts/{thread['id']}/comments")).json()["items"]
    assert len(comments) == 1
    assert comments[0]["author_id"] == streamer.id
    assert "성공" in comments[0]["body"] and "10,000" in comments[0]["body"]
    await settle_all(container)
    assert (await client.get(f"/api/v1/posts/{thread['id']}")).json()["comment_count"] == 1
