"""The pages over HTTP: the directory's search, a channel's profile and top backers (user
content escaped), the studio's profile form, the mission page's quick amounts and minimum."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from missionlink.bootstrap import Container
from tests.helpers import make_user, propose, top_up

SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
pytestmark = pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)


async def _page(client: httpx.AsyncClient, path: str, **params: Any) -> str:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    return r.text


async def test_the_home_page_searches_the_directory_and_keeps_the_query_in_its_pages(
    client: httpx.AsyncClient, container: Container
) -> None:
    for i in range(50):
        await make_user(container, "streamer", name=f"Ramen {i:02d}")
    other = await make_user(container, "streamer", name="Speedrunner")
    html = await _page(client, "/", q="RAMEN")
    assert 'value="RAMEN"' in html and "RAMEN\u2019 스트리머 검색 결과" in html
    names = re.findall(r'class="streamer-name" href="/channels/\d+">([^<]+)</a>', html)
    assert names == [f"Ramen {i:02d}" for i in range(48)]
    cursor = re.search(r'href="\?q=RAMEN&amp;cursor=([^"]+)"', html)
    assert cursor, "the next page keeps the search"
    html = await _page(client, "/", q="RAMEN", cursor=cursor.group(1).replace("%3D", "="))
    names = re.findall(r'class="streamer-name" href="/channels/\d+">([^<]+)</a>', html)
    assert names == ["Ramen 48", "Ramen 49"]
    html = await _page(client, "/", q="speed")
    assert f'href="/channels/{other.id}">Speedrunner</a>' in html and "Ramen 00" not in html
    html = await _page(client, "/", q=SCRIPT)
    assert ESCAPED in html and SCRIPT not in html
    assert "이름이 일치하는 스트리머가 없습니다." in html
    english = await _page(client, "/", q="nobody", lang="en")
    assert "No streamer has a matching name." in english
    assert not re.search("[가-힣]", english.replace("한국어", ""))
    # Text the API would refuse (too long, control characters) searches nothing.
    assert "Ramen 00" in await _page(client, "/", q="a" * 60)


async def test_the_channel_page_shows_the_profile_and_the_top_backers_escaped(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer", name="라면왕")
    fan = await make_user(container, name=SCRIPT)
    await top_up(client, fan, 100_000)
    await propose(client, fan, streamer, amount=12_000)
    r = await client.patch("/api/v1/streamers/me/profile", headers=streamer.headers, json={
        "intro": f"매일 밤 방송\n{SCRIPT}", "link": "https://chzzk.naver.com/abc?x=1&y=2"})
    assert r.status_code == 200, r.text
    html = await _page(client, f"/channels/{streamer.id}")
    assert f'<p id="channel-intro" class="channel-intro">매일 밤 방송\n{ESCAPED}</p>' in html
    link = re.search(r'<a id="channel-link"[^>]*>', html)
    assert link is not None
    assert 'href="https://chzzk.naver.com/abc?x=1&amp;y=2"' in link.group(0)
    assert 'rel="noopener nofollow ugc"' in link.group(0)
    assert "치지직 채널" in html
    top = html[html.index('id="top-backers"'):html.index('id="board"')]
    assert ESCAPED in top and "12,000원" in top and "후원 1건" in top and SCRIPT not in html
    english = await _page(client, f"/channels/{streamer.id}", lang="en")
    assert "CHZZK channel" in english and "Top backers" in english and "1 pledge" in english
    directory = await _page(client, "/")
    assert "치지직 채널" in directory and f"매일 밤 방송\n{ESCAPED}" in directory

    bare = await make_user(container, "streamer", name="Quiet")
    html = await _page(client, f"/channels/{bare.id}", lang="en")
    assert 'id="channel-intro"' not in html and 'id="channel-link"' not in html
    assert "No backers yet." in html


async def test_the_studio_has_the_profile_form(client: httpx.AsyncClient) -> None:
    html = await _page(client, "/studio")
    form = re.search(r'<form method="post" data-form="profile"[^>]*>', html)
    assert form is not None and 'data-intro-max="500"' in form.group(0)
    hosts = re.search(r'data-link-hosts="([^"]+)"', form.group(0))
    assert hosts is not None
    assert {"chzzk.naver.com", "sooplive.co.kr", "afreecatv.com", "youtube.com",
            "youtu.be"} <= set(hosts.group(1).split())


@pytest.mark.parametrize("settings_overrides", [{"min_pledge": 2_000}])
async def test_the_pledge_form_shows_the_minimum_and_quick_amounts(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 100_000)
    mission = await propose(client, fan, streamer, amount=10_000)
    html = await _page(client, f"/missions/{mission['id']}")
    form = html[html.index('data-form="pledge"'):]
    form = form[:form.index("</form>")]
    assert "최소 2,000원 · 최대 1,000,000원" in form
    assert 'placeholder="최소 2,000원"' in form and 'min="2000"' in form
    assert re.findall(r'data-add-amount="(\d+)"[^>]*>([^<]+)<', form) == [
        ("1000", "+1천"), ("5000", "+5천"), ("10000", "+1만"), ("50000", "+5만")]
    english = await _page(client, f"/missions/{mission['id']}", lang="en")
    form = english[english.index('data-form="pledge"'):]
    assert "Min 2,000 KRW · max 1,000,000 KRW" in form and 'placeholder="At least 2,000 KRW"' in form
    assert re.findall(r'data-add-amount="\d+"[^>]*>([^<]+)<', form) == [
        "+1,000", "+5,000", "+10,000", "+50,000"]
