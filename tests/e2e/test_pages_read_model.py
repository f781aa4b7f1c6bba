"""The public web pages come from the read model: one render for a burst of viewers, one
entry per language and per query that changes the HTML, dropped at once by the writes that
change them (the writer's next page load shows the write), across replicas too, and honest
about the clock.

The cache's own TTL clock is stopped in these tests (``_freeze_ttl``): a passing result
then comes from invalidation, never from an entry happening to age out.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from missionlink.api.routers import pages
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.domain.timestamps import iso
from missionlink.services.read_model import ReadCache, mission_tag
from tests.conftest import redis_test_url
from tests.e2e.test_read_cache import _replica
from tests.helpers import Actor, make_user, propose, settle_all, top_up


def _freeze_ttl(cache: ReadCache) -> None:
    cache.monotonic = lambda: 0.0


class Renders:
    """Counts the pages rendered from a template (cached or not), per template."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str, str]] = []
        real = pages.render_html

        def counting(c: Container, lang: str, template: str, **kw: Any) -> str:
            self.seen.append((template, lang))
            return real(c, lang, template, **kw)

        monkeypatch.setattr(pages, "render_html", counting)

    def of(self, template: str) -> int:
        return sum(1 for t, _ in self.seen if t == template)


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Renders:
    return Renders(monkeypatch)


async def _page(client: httpx.AsyncClient, path: str, **kwargs: Any) -> str:
    r = await client.get(path, **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert "<!--ml:" not in r.text  # the marks never leave the server
    return r.text


def _total(html: str) -> int:
    found = re.search(r'id="mission-card"[^>]* data-total="(\d+)"', html)
    assert found, html[:2000]
    return int(found.group(1))


async def _setup(client: httpx.AsyncClient, container: Container
                 ) -> tuple[dict[str, Any], Actor, Actor]:
    streamer = await make_user(container, "streamer", name="라면왕")
    fan = await make_user(container, name="Fan")
    await top_up(client, fan, 100_000)
    return await propose(client, fan, streamer, title="매운 라면 10봉 먹기"), fan, streamer


async def test_twenty_concurrent_loads_of_a_mission_page_make_one_render(
    client: httpx.AsyncClient, container: Container, renders: Renders
) -> None:
    _freeze_ttl(container.read_cache)
    mission, _, _ = await _setup(client, container)
    path = f"/missions/{mission['id']}"
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = container.core_db.reader.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        loads = container.read_cache.loads
        replies = await asyncio.gather(*(client.get(path) for _ in range(20)))
        burst, statements[:] = list(statements), []
        # What one viewer alone costs, for comparison.
        container.read_cache.invalidate([mission_tag(mission["id"])])
        await _page(client, path)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert {r.status_code for r in replies} == {200}
    assert len({r.content for r in replies}) == 1  # the same page for every viewer
    assert renders.of("mission.html") == 2  # one for the twenty, one for the one
    assert container.read_cache.loads == loads + 2
    assert statements and burst == statements  # twenty viewers read what one reads
    # And the next burst is served from the entry: no render, no query.
    again = await asyncio.gather(*(client.get(path) for _ in range(20)))
    assert {r.content for r in again} == {replies[0].content}
    assert renders.of("mission.html") == 2


async def test_the_pledgers_next_page_load_shows_the_pledge(
    client: httpx.AsyncClient, container: Container, renders: Renders
) -> None:
    _freeze_ttl(container.read_cache)
    mission, _, streamer = await _setup(client, container)
    backer = await make_user(container)
    await top_up(client, backer, 50_000)
    mission_path, channel_path = f"/missions/{mission['id']}", f"/channels/{streamer.id}"
    before = _total(await _page(client, mission_path))
    assert f'data-total="{before}"' in await _page(client, channel_path)
    assert f"{before:,}원" in await _page(client, "/")
    # Served from the read model until something changes.
    counted = len(renders.seen)
    for path in (mission_path, channel_path, "/"):
        await _page(client, path)
    assert len(renders.seen) == counted

    r = await client.post(f"/api/v1/missions/{mission['id']}/pledges",
                          json={"amount": 3000}, headers=backer.headers)
    assert r.status_code == 201, r.text
    after = await _page(client, mission_path)
    assert _total(after) == before + 3000
    assert backer.name in after  # among the backers
    assert f'data-total="{before + 3000}"' in await _page(client, channel_path)
    assert f"{before + 3000:,}원" in await _page(client, "/")


async def test_a_bet_and_an_acceptance_show_at_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    _freeze_ttl(container.read_cache)
    mission, _, streamer = await _setup(client, container)
    await settle_all(container)
    bettor = await make_user(container)
    mission_path, channel_path = f"/missions/{mission['id']}", f"/channels/{streamer.id}"
    assert "수락 대기" in await _page(client, mission_path)
    assert "수락 대기" in await _page(client, channel_path)
    r = await client.post(f"/api/v1/missions/{mission['id']}/bets",
                          json={"side": "success", "points": 100}, headers=bettor.headers)
    assert r.status_code == 201, r.text
    html = await _page(client, mission_path)
    pool = re.search(r'pool-success">\s*<div class="pool-head"><strong>[^<]*</strong> '
                     r'<span>([\d,]+) ', html)
    assert pool and pool.group(1) == "100", html
    r = await client.post(f"/api/v1/missions/{mission['id']}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    for path in (mission_path, channel_path):
        html = await _page(client, path)
        assert 'data-status="accepted"' in html and 'data-status="pending"' not in html, path


async def test_each_language_is_its_own_entry(
    client: httpx.AsyncClient, container: Container, renders: Renders
) -> None:
    _freeze_ttl(container.read_cache)
    mission, _, _ = await _setup(client, container)
    path = f"/missions/{mission['id']}"
    korean = await _page(client, path)
    english = await _page(client, path, params={"lang": "en"})
    assert '<html lang="ko">' in korean and "수락 대기" in korean
    assert '<html lang="en">' in english and "Awaiting acceptance" in english
    assert renders.seen == [("mission.html", "ko"), ("mission.html", "en")]
    # The cookie picks the same entry as ?lang=, and each carries its own strings.
    assert await _page(client, path, headers={"Cookie": "ml_lang=en"}) == english
    assert await _page(client, path, params={"lang": "ko"},
                       headers={"Cookie": "ml_lang=en"}) == korean
    assert len(renders.seen) == 2
    for lang, html in (("ko", korean), ("en", english)):
        assert ('<script id="ml-i18n" type="application/json">'
                + pages._STRINGS_JSON[lang] + "</script>") in html


async def test_the_channel_page_is_keyed_by_the_board_search(
    client: httpx.AsyncClient, container: Container, renders: Renders
) -> None:
    _freeze_ttl(container.read_cache)
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)

    async def post(title: str) -> dict[str, Any]:
        r = await client.post(f"/api/v1/channels/{streamer.id}/posts", headers=fan.headers,
                              json={"title": title, "body": "본문"})
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    apple = await post("apple review")
    await post("banana review")
    path = f"/channels/{streamer.id}"
    everything = await _page(client, path)
    apples = await _page(client, path, params={"q": "apple"})
    bananas = await _page(client, path, params={"q": "banana"})
    assert "apple review" in everything and "banana review" in everything
    assert "apple review" in apples and "banana review" not in apples
    assert "banana review" in bananas and "apple review" not in bananas
    assert renders.of("channel.html") == 3
    assert await _page(client, path, params={"q": "apple"}) == apples
    assert renders.of("channel.html") == 3

    # A new post names the channel: every search of it is dropped.
    await post("apple pie")
    assert "apple pie" in await _page(client, path, params={"q": "apple"})
    # A comment names its post: the count on the channel page moves at once.
    assert "댓글 0<" in apples
    r = await client.post(f"/api/v1/posts/{apple['id']}/comments", headers=fan.headers,
                          json={"body": "맛있겠다"})
    assert r.status_code == 201, r.text
    comment = r.json()
    assert "맛있겠다" in await _page(client, f"/posts/{apple['id']}")
    assert "댓글 1<" in await _page(client, path, params={"q": "apple"})
    # So do an edit of the post, and the deletion of its comment.
    r = await client.patch(f"/api/v1/posts/{apple['id']}", headers=fan.headers,
                           json={"title": "apple review, edited"})
    assert r.status_code == 200, r.text
    assert "apple review, edited" in await _page(client, f"/posts/{apple['id']}")
    assert "apple review, edited" in await _page(client, path, params={"q": "apple"})
    r = await client.delete(f"/api/v1/comments/{comment['id']}", headers=fan.headers)
    assert r.status_code == 204, r.text
    assert "맛있겠다" not in await _page(client, f"/posts/{apple['id']}")
    assert "댓글 0<" in await _page(client, path, params={"q": "apple"})
    r = await client.delete(f"/api/v1/posts/{apple['id']}", headers=fan.headers)
    assert r.status_code == 204, r.text
    assert "apple review" not in await _page(client, path, params={"q": "apple"})
    assert (await client.get(f"/posts/{apple['id']}")).status_code == 404


async def test_a_new_mission_shows_on_the_channel_page_and_its_fragment(
    client: httpx.AsyncClient, container: Container
) -> None:
    _freeze_ttl(container.read_cache)
    mission, fan, streamer = await _setup(client, container)
    fragment = f"/channels/{streamer.id}/open-missions"
    assert f'/missions/{mission["id"]}"' in await _page(client, fragment)
    second = await propose(client, fan, streamer, title="두 번째 미션")
    for path in (fragment, f"/channels/{streamer.id}", "/"):
        assert "두 번째 미션" in await _page(client, path), path
    assert second["id"] != mission["id"]


async def test_a_cached_page_carries_the_time_it_is_served_at(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, renders: Renders
) -> None:
    _freeze_ttl(container.read_cache)
    mission, _, _ = await _setup(client, container)
    path = f"/missions/{mission['id']}"
    first = await _page(client, path)
    assert f'data-server-time="{iso(clock.now())}"' in first
    clock.advance(5)
    second = await _page(client, path)
    assert renders.of("mission.html") == 1  # the same entry...
    assert f'data-server-time="{iso(clock.now())}"' in second  # ...at this moment

    def timeless(html: str) -> str:
        return re.sub(r'data-server-time="[^"]*"', "", html)

    assert first != second and timeless(first) == timeless(second)


async def test_the_clock_alone_closes_pledges_on_a_cached_page(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """No write happens at a deadline: the entry stops being used at the moment the page
    would say something else (here the pledge form goes, the mission has expired)."""
    _freeze_ttl(container.read_cache)
    mission, _, streamer = await _setup(client, container)
    mission_path, channel_path = f"/missions/{mission['id']}", f"/channels/{streamer.id}"
    assert 'data-form="pledge"' in await _page(client, mission_path)
    assert f'/missions/{mission["id"]}"' in await _page(client, f"{channel_path}/open-missions")
    clock.advance(3601)
    html = await _page(client, mission_path)
    assert 'data-form="pledge"' not in html and 'data-status="expired"' in html
    assert f'/missions/{mission["id"]}"' not in await _page(
        client, f"{channel_path}/open-missions")


async def test_pages_count_against_the_read_models_memory_bound(
    client: httpx.AsyncClient, container: Container
) -> None:
    cache = container.read_cache
    _freeze_ttl(cache)
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 200_000)
    ids = [(await propose(client, fan, streamer, title=f"미션 {n}"))["id"] for n in range(6)]
    html = await _page(client, f"/missions/{ids[0]}")
    entry = next(e for k, e in cache._entries.items() if k[:3] == ("page", "ko", "mission"))
    # An entry holds neither the strings of its language nor the time: both go in per reply.
    assert pages._STRINGS_BYTES["ko"] not in entry.body
    assert len(entry.body) < len(html.encode()) - len(pages._STRINGS_BYTES["ko"]) + 100
    cache.max_bytes = 2 * len(entry.body) + len(entry.body) // 2
    for mission_id in ids:
        await _page(client, f"/missions/{mission_id}")
        assert cache._bytes <= cache.max_bytes
    assert 1 <= len(cache) <= 2


async def test_a_pledge_on_one_replica_drops_the_page_on_the_others(
    client: httpx.AsyncClient, container: Container
) -> None:
    url = redis_test_url("the two-replica page cache test")
    mission, fan, _ = await _setup(client, container)
    path = f"/missions/{mission['id']}"
    async with _replica(container, url) as (_, api_a), _replica(container, url) as (b, api_b):
        before = _total(await _page(api_b, path))  # cached on b, which now listens
        async with asyncio.timeout(10):
            await b.read_cache.listening.wait()
        r = await api_a.post(f"/api/v1/missions/{mission['id']}/pledges",
                             json={"amount": 2000}, headers=fan.headers)
        assert r.status_code == 201, r.text
        async with asyncio.timeout(5):
            while _total(await _page(api_b, path)) == before:
                await asyncio.sleep(0.02)
        assert _total(await _page(api_b, path)) == before + 2000


async def test_a_missing_page_is_not_found_and_never_stored(
    client: httpx.AsyncClient, container: Container
) -> None:
    _freeze_ttl(container.read_cache)
    for path in ("/missions/999999", "/channels/999999", "/channels/999999/open-missions",
                 "/posts/999999"):
        replies = await asyncio.gather(*(client.get(path) for _ in range(3)))
        assert {r.status_code for r in replies} == {404}, path
    assert len(container.read_cache) == 0
