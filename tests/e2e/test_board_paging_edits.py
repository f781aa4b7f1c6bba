"""Fan board: paging both ways, search through comments, comment edits (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.domain.cursors import encode_opaque
from tests.helpers import Actor, make_user


async def _post(client: httpx.AsyncClient, who: Actor, streamer: Actor, title: str,
                body: str = "본문") -> dict[str, Any]:
    r = await client.post(f"/api/v1/channels/{streamer.id}/posts", headers=who.headers,
                          json={"title": title, "body": body})
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


async def _page(client: httpx.AsyncClient, streamer: Actor, **params: Any) -> dict[str, Any]:
    r = await client.get(f"/api/v1/channels/{streamer.id}/posts", params=params)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def _titles(page: dict[str, Any]) -> list[str]:
    return [p["title"] for p in page["items"]]


async def test_pages_older_and_back_newer(client: httpx.AsyncClient, container: Container) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    for i in range(7):
        await _post(client, fan, streamer, f"post {i}")
    first = await _page(client, streamer, limit=3)
    assert _titles(first) == ["post 6", "post 5", "post 4"]
    assert first["prev_cursor"] is None and first["next_cursor"] is not None
    second = await _page(client, streamer, limit=3, cursor=first["next_cursor"])
    assert _titles(second) == ["post 3", "post 2", "post 1"]
    assert second["prev_cursor"] is not None
    last = await _page(client, streamer, limit=3, cursor=second["next_cursor"])
    assert _titles(last) == ["post 0"] and last["next_cursor"] is None
    # Back from the last page: the same pages as on the way there, newest first.
    back = await _page(client, streamer, limit=3, cursor=last["prev_cursor"])
    assert _titles(back) == ["post 3", "post 2", "post 1"]
    assert back["next_cursor"] is not None
    assert _titles(await _page(client, streamer, limit=3, cursor=back["next_cursor"])) == [
        "post 0"]
    top = await _page(client, streamer, limit=3, cursor=back["prev_cursor"])
    assert _titles(top) == ["post 6", "post 5", "post 4"]
    assert top["prev_cursor"] is None and top["next_cursor"] is not None
    # Posts published meanwhile show up when paging back to the newest.
    await _post(client, fan, streamer, "post 7 (new)")
    newer = await _page(client, streamer, limit=3, cursor=back["prev_cursor"])
    assert _titles(newer) == ["post 6", "post 5", "post 4"]
    assert newer["prev_cursor"] is not None
    newest = await _page(client, streamer, limit=3, cursor=newer["prev_cursor"])
    assert _titles(newest) == ["post 7 (new)"] and newest["prev_cursor"] is None


async def test_paging_back_skips_deleted_posts_and_keeps_the_search(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    made = [await _post(client, fan, streamer, f"라면 {i}") for i in range(4)]
    await _post(client, fan, streamer, "다른 글")
    first = await _page(client, streamer, limit=2, q="라면")
    assert _titles(first) == ["라면 3", "라면 2"]
    second = await _page(client, streamer, limit=2, q="라면", cursor=first["next_cursor"])
    assert _titles(second) == ["라면 1", "라면 0"]
    for gone in made[2:]:
        r = await client.delete(f"/api/v1/posts/{gone['id']}", headers=fan.headers)
        assert r.status_code == 204
    back = await _page(client, streamer, limit=2, q="라면", cursor=second["prev_cursor"])
    assert back["items"] == [] and back["prev_cursor"] is None
    assert back["next_cursor"] is not None
    assert _titles(await _page(client, streamer, limit=2, q="라면",
                               cursor=back["next_cursor"])) == ["라면 1", "라면 0"]
    # A page past the end links back to what there is.
    assert second["next_cursor"] is None
    end = await _page(client, streamer, limit=2, q="라면", cursor=encode_opaque(str(made[0]["id"])))
    assert end["items"] == [] and end["next_cursor"] is None
    assert _titles(await _page(client, streamer, limit=2, q="라면",
                               cursor=end["prev_cursor"])) == ["라면 1", "라면 0"]


@pytest.mark.parametrize("cursor", [encode_opaque("newer:"), encode_opaque("newer:x"),
                                    encode_opaque("newer:-1"), encode_opaque("newer:00"),
                                    encode_opaque("older:5")])
async def test_malformed_newer_cursors_are_422(
    client: httpx.AsyncClient, container: Container, cursor: str
) -> None:
    streamer = await make_user(container, "streamer")
    r = await client.get(f"/api/v1/channels/{streamer.id}/posts", params={"cursor": cursor})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "cursor" in r.json()["detail"]


async def test_search_finds_posts_by_their_live_comments(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    other_channel = await make_user(container, "streamer")
    fan = await make_user(container)
    quiet = await _post(client, fan, streamer, "오늘 방송", "재밌었어요")
    titled = await _post(client, fan, streamer, "짜장면 먹방", "본문")
    gone = await _post(client, fan, streamer, "삭제될 댓글", "본문")
    elsewhere = await _post(client, fan, other_channel, "다른 채널", "본문")
    await _comment(client, fan, quiet["id"], "다음엔 짜장면 먹어 주세요")
    await _comment(client, fan, quiet["id"], "짜장면 최고")  # two matches, one post
    await _comment(client, fan, elsewhere["id"], "짜장면")
    deleted = await _comment(client, fan, gone["id"], "JJAJANG 100%")
    assert _titles(await _page(client, streamer, q="짜장면")) == ["짜장면 먹방", "오늘 방송"]
    assert _titles(await _page(client, streamer, q="jjajang")) == ["삭제될 댓글"]
    assert _titles(await _page(client, streamer, q="100%")) == ["삭제될 댓글"]
    r = await client.delete(f"/api/v1/comments/{deleted['id']}", headers=fan.headers)
    assert r.status_code == 204
    assert _titles(await _page(client, streamer, q="jjajang")) == []
    page = await _page(client, streamer, q="짜장면", limit=1)
    assert _titles(page) == ["짜장면 먹방"] and page["items"][0]["id"] == titled["id"]
    rest = await _page(client, streamer, q="짜장면", limit=1, cursor=page["next_cursor"])
    assert _titles(rest) == ["오늘 방송"] and rest["items"][0]["comment_count"] == 2
    # An edited comment is found by its new text only.
    mine = await _comment(client, fan, titled["id"], "탕수육도")
    r = await client.patch(f"/api/v1/comments/{mine['id']}", json={"body": "깐풍기도"},
                           headers=fan.headers)
    assert r.status_code == 200, r.text
    assert _titles(await _page(client, streamer, q="탕수육")) == []
    assert _titles(await _page(client, streamer, q="깐풍기")) == ["짜장면 먹방"]


async def test_the_author_edits_a_comment(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    fan, other = await make_user(container), await make_user(container)
    admin = await make_user(container, "admin")
    post = await _post(client, streamer, streamer, "공지")
    comment = await _comment(client, fan, post["id"], "오타가 있는 댓글")
    assert comment["edited_at"] is None
    url = f"/api/v1/comments/{comment['id']}"
    clock.advance(90)
    # Only the author: not the channel's streamer, not an admin, not the post's author.
    for who in (other, streamer, admin):
        r = await client.patch(url, json={"body": "hijack"}, headers=who.headers)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "author" in r.json()["detail"]
    assert (await client.patch(url, json={"body": "x"})).status_code == 401
    r = await client.patch(url, json={"body": "고친 댓글"}, headers=fan.headers)
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["body"] == "고친 댓글" and edited["id"] == comment["id"]
    assert edited["created_at"] == comment["created_at"]
    assert edited["edited_at"] is not None and edited["edited_at"] > comment["created_at"]
    # The same request again changes nothing: same answer, same edited_at.
    clock.advance(60)
    again = await client.patch(url, json={"body": "고친 댓글"}, headers=fan.headers)
    assert again.status_code == 200 and again.json() == edited
    listed = (await client.get(f"/api/v1/posts/{post['id']}/comments")).json()["items"]
    assert listed == [edited]
    # Idempotency-Key replays the first answer, even after a later edit.
    keyed = {**fan.headers, "Idempotency-Key": "edit-1"}
    first = await client.patch(url, json={"body": "세 번째"}, headers=keyed)
    await client.patch(url, json={"body": "네 번째"}, headers=fan.headers)
    replay = await client.patch(url, json={"body": "세 번째"}, headers=keyed)
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json() and replay.headers.get("Idempotent-Replayed") == "true"
    assert (await client.get(f"/api/v1/posts/{post['id']}/comments")).json()["items"][0][
        "body"] == "네 번째"


async def test_comment_edits_follow_the_creation_rules(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    post = await _post(client, fan, streamer, "글")
    comment = await _comment(client, fan, post["id"], "처음")
    url = f"/api/v1/comments/{comment['id']}"
    for bad in ({}, {"body": None}, {"body": ""}, {"body": " \n"}, {"body": "c" * 2001},
                {"body": 5}, {"body": "x\u0000y"}, {"body": "x", "extra": 1}):
        r = await client.patch(url, json=bad, headers=fan.headers)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"], r.text
    r = await client.patch(url, content=b"not json", headers={
        **fan.headers, "content-type": "application/json"})
    assert 400 <= r.status_code < 500
    r = await client.patch(url, json={"body": "가" * 2000}, headers=fan.headers)
    assert r.status_code == 200 and r.json()["body"] == "가" * 2000
    listed = (await client.get(f"/api/v1/posts/{post['id']}/comments")).json()["items"]
    assert listed[0]["body"] == "가" * 2000


async def test_deleted_comments_and_posts_cannot_be_edited(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    post = await _post(client, fan, streamer, "글")
    gone = await _comment(client, fan, post["id"], "지울 댓글")
    kept = await _comment(client, fan, post["id"], "남길 댓글")
    r = await client.delete(f"/api/v1/comments/{gone['id']}", headers=streamer.headers)
    assert r.status_code == 204
    r = await client.patch(f"/api/v1/comments/{gone['id']}", json={"body": "x"},
                           headers=fan.headers)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await client.patch("/api/v1/comments/999999999", json={"body": "x"},
                           headers=fan.headers)
    assert r.status_code == 404
    r = await client.delete(f"/api/v1/posts/{post['id']}", headers=fan.headers)
    assert r.status_code == 204
    r = await client.patch(f"/api/v1/comments/{kept['id']}", json={"body": "x"},
                           headers=fan.headers)
    assert r.status_code == 404


async def test_channel_page_links_both_ways_and_keeps_the_board_anchor(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    for i in range(45):
        await _post(client, fan, streamer, f"post {i:02d}")
    url = f"/channels/{streamer.id}"
    first = (await client.get(url)).text
    assert 'rel="prev"' not in first
    older = re.search(r'rel="next" data-pager="older" href="\?cursor=([^"#]+)#board"', first)
    assert older is not None
    assert f'action="/channels/{streamer.id}#board"' in first
    middle = (await client.get(url, params={"cursor": older.group(1)})).text
    assert "post 24" in middle and "post 04" not in middle and "post 25" not in middle
    newer = re.search(r'rel="prev" data-pager="newer" href="\?cursor=([^"#]+)#board"', middle)
    assert newer is not None and 'rel="next"' in middle
    back = (await client.get(url, params={"cursor": newer.group(1)})).text
    assert "post 44" in back and "post 25" in back and "post 24" not in back
    assert 'rel="prev"' not in back
    # A search keeps its query on both links; a malformed cursor shows the first page.
    searched = (await client.get(url, params={"q": "post", "cursor": older.group(1)})).text
    assert re.search(r'href="\?q=post&amp;cursor=[^"#]+#board"', searched)
    assert "제목·본문·댓글에서 찾았습니다." in searched  # the page says comments were searched
    assert "제목·본문·댓글에서 찾았습니다." not in middle
    broken = (await client.get(url, params={"cursor": "!!"})).text
    assert "post 44" in broken


async def test_post_page_marks_edited_comments_and_offers_the_author_an_edit_form(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    post = await _post(client, fan, streamer, "글")
    kept = await _comment(client, fan, post["id"], "그대로")
    changed = await _comment(client, fan, post["id"], "처음 <b>")
    r = await client.patch(f"/api/v1/comments/{changed['id']}", json={"body": "고침 <b>"},
                           headers=fan.headers)
    assert r.status_code == 200, r.text
    for lang, word in (("ko", "수정됨"), ("en", "edited")):
        html = (await client.get(f"/posts/{post['id']}", params={"lang": lang})).text
        edited = html[html.index(f'id="comment-{changed["id"]}"'):]
        edited = edited[:edited.index("</li>")]
        assert f'<span class="comment-edited">{word}</span>' in edited
        assert "고침 &lt;b&gt;" in edited and "고침 <b>" not in edited
        assert f'data-form="edit-comment" data-comment="{changed["id"]}"' in edited
        assert f'data-users="{fan.id}"' in edited
        plain = html[html.index(f'id="comment-{kept["id"]}"'):]
        assert "comment-edited" not in plain[:plain.index("</li>")]


async def test_comments_page_older_and_back_newer(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    post = await _post(client, fan, streamer, "글")
    for i in range(5):
        await _comment(client, fan, post["id"], f"c{i}")
    url = f"/api/v1/posts/{post['id']}/comments"

    async def bodies(**params: Any) -> tuple[list[str], dict[str, Any]]:
        r = await client.get(url, params=params)
        assert r.status_code == 200, r.text
        return [c["body"] for c in r.json()["items"]], r.json()

    got, first = await bodies(limit=2)
    assert got == ["c4", "c3"] and first["prev_cursor"] is None
    got, second = await bodies(limit=2, cursor=first["next_cursor"])
    assert got == ["c2", "c1"]
    got, last = await bodies(limit=2, cursor=second["next_cursor"])
    assert got == ["c0"] and last["next_cursor"] is None
    got, back = await bodies(limit=2, cursor=last["prev_cursor"])
    assert got == ["c2", "c1"] and back["next_cursor"] is not None
    got, top = await bodies(limit=2, cursor=back["prev_cursor"])
    assert got == ["c4", "c3"] and top["prev_cursor"] is None
    html = (await client.get(f"/posts/{post['id']}")).text
    assert 'rel="prev"' not in html  # 50 a page: all five on one page
    r = await client.get(url, params={"cursor": encode_opaque("newer:x")})
    assert r.status_code == 422
