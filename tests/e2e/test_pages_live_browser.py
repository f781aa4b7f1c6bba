"""The mission, channel and studio pages follow the public live streams in a real browser.

Headless Chromium (Debian's ``chromium``) via Playwright, at 1280x800 and 390x844, in Korean
and English. Another client pledges, bets, proposes and ends missions through the API; the
open pages show it without reloading: totals, pledge count, backers, prediction pools, the
status and the settlement (a rejected mission ends on 정산 완료, not 정산 중). A stream that
drops resumes with ``Last-Event-ID`` and catches up, and no pledge shows twice. Skipped when
Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from missionlink.api import live_hub
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.sse import live_server
from tests.helpers import (
    DESKTOP,
    PHONE,
    Actor,
    browser_matrix,
    make_user,
    propose,
    settle_all,
    top_up,
)

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 10_000
WORDS = {
    "ko": {"won": "원", "live": "실시간 업데이트 중", "rejected": "거절됨", "succeeded": "성공",
           "settled": "정산 완료", "pending": "정산 중", "points": "포인트",
           "proposal": "새 미션 제안", "overlay_off": "오버레이 연결 안 됨",
           "locale": "ko-KR"},
    "en": {"won": " KRW", "live": "Live updates on", "rejected": "Rejected",
           "succeeded": "Succeeded", "settled": "Settled", "pending": "Settlement pending",
           "points": "points", "proposal": "New mission proposed",
           "overlay_off": "Overlay not connected", "locale": "en-US"},
}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


class Browser:
    """A page per test with console errors, document loads and stream requests recorded."""

    def __init__(self, context: Any, base: str) -> None:
        self.context = context
        self.base = base
        self.errors: list[str] = []
        self.documents: list[str] = []
        self.streams: list[Any] = []
        context.on("request", self._request)

    def _request(self, request: Any) -> None:
        if request.resource_type == "document":
            self.documents.append(request.url.removeprefix(self.base))
        elif request.url.endswith("/events"):
            self.streams.append(request)

    async def page(self, path: str) -> Any:
        page = await self.context.new_page()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        await page.goto(self.base + path)
        await page.wait_for_selector("body[data-ready]", state="attached", timeout=TIMEOUT_MS)
        return page


@contextlib.asynccontextmanager
async def browsing(app: FastAPI, lang: str, viewport: dict[str, int],
                   token: str | None = None) -> AsyncIterator[Browser]:
    async with live_server(app) as base, playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await chromium.new_context(viewport=viewport,
                                                 locale=WORDS[lang]["locale"],
                                                 timezone_id="Asia/Seoul")
            if token is not None:
                # Logged in as the page's script keeps it: the access token in this tab.
                saved = json.dumps({"token": token, "exp": (time.time() + 600) * 1000})
                await context.add_init_script(
                    f"sessionStorage.setItem('missionlink-access', {json.dumps(saved)})")
            browser = Browser(context, base)
            yield browser
            assert not browser.errors, browser.errors
        finally:
            await chromium.close()


async def _pledge(client: httpx.AsyncClient, who: Actor, mission_id: int, amount: int) -> None:
    r = await client.post(f"/api/v1/missions/{mission_id}/pledges", json={"amount": amount},
                          headers=who.headers)
    assert r.status_code == 201, r.text


async def _text(page: Any, selector: str, text: str) -> None:
    await page.locator(selector, has_text=text).first.wait_for(timeout=TIMEOUT_MS)


async def _drop_streams(app: FastAPI) -> None:
    """End every open stream as a lost connection would; clients resume on their own."""
    hub: live_hub.LiveHub = app.state.live_hub
    for topic in list(hub.topics.values()):
        topic.close()
    await asyncio.sleep(0)


def _ids(value: object) -> str:
    return f"{value['width']}x{value['height']}" if isinstance(value, dict) else str(value)


def _won(lang: str, amount: int) -> str:
    return f"{amount:,}{WORDS[lang]['won']}"


@pytest.mark.parametrize(("lang", "viewport"), browser_matrix(), ids=_ids)
async def test_the_mission_page_follows_pledges_bets_a_drop_and_the_end(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int]
) -> None:
    words = WORDS[lang]
    streamer = await make_user(container, "streamer", name="라면왕")
    creator = await make_user(container, name="제안왕")
    backer = await make_user(container, name="<b>열혈팬</b>")
    for who in (creator, backer):
        await top_up(client, who, 100_000)
    mission = await propose(client, creator, streamer, amount=10_000, title="매운 라면 <10봉>")
    mid = mission["id"]
    await settle_all(container)
    app = create_app(container)
    async with browsing(app, lang, viewport) as browser:
        page = await browser.page(f"/missions/{mid}?lang={lang}")
        await _text(page, "#live-status.on", words["live"])

        # Another client pledges: total, pledge count and the backer, without a reload.
        await _pledge(client, backer, mid, 5_000)
        await settle_all(container)
        await _text(page, "#mission-card .total", _won(lang, 15_000))
        await _text(page, "#backers tr.fresh", "<b>열혈팬</b>")
        await page.locator("#mission-card .facts dd", has_text="2").first.wait_for()

        # A bet moves the prediction pools.
        r = await client.post(f"/api/v1/missions/{mid}/bets", headers=backer.headers,
                              json={"side": "success", "points": 300})
        assert r.status_code == 201, r.text
        await settle_all(container)
        await _text(page, "#pools .pool-success", f"300 {words['points']}")

        # The stream drops; a pledge made meanwhile is caught up after the resume, once.
        streams_before = len(browser.streams)
        await _drop_streams(app)
        await _pledge(client, backer, mid, 2_000)
        await settle_all(container)
        await _text(page, "#mission-card .total", _won(lang, 17_000))
        await page.locator("#backers tbody tr").nth(2).wait_for(timeout=TIMEOUT_MS)
        assert len(browser.streams) > streams_before
        resumed = await browser.streams[-1].all_headers()
        assert resumed.get("last-event-id", "").startswith("p"), resumed
        await _text(page, "#live-status.on", words["live"])

        # The streamer rejects: the page ends on the final state, settled.
        r = await client.post(f"/api/v1/missions/{mid}/reject", headers=streamer.headers)
        assert r.status_code == 200, r.text
        await settle_all(container)
        await _text(page, "#mission-card .badge", words["rejected"])
        await _text(page, "#mission-card .badge", words["settled"])
        assert await page.locator("#mission-card", has_text=words["pending"]).count() == 0
        assert await page.locator("form[data-form=pledge]").count() == 0
        rows = await page.locator("#backers tbody tr").all_inner_texts()
        assert len(rows) == 3, rows  # every pledge once
        assert browser.documents == [f"/missions/{mid}?lang={lang}"]  # never reloaded


@pytest.mark.parametrize(("lang", "viewport"), [("ko", PHONE), ("en", DESKTOP)], ids=_ids)
async def test_studio_and_channel_follow_the_channel_and_a_rejection_settles_live(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int]
) -> None:
    words = WORDS[lang]
    streamer = await make_user(container, "streamer", name="라면왕")
    fan = await make_user(container, name="열혈팬")
    await top_up(client, fan, 100_000)
    first = await propose(client, fan, streamer, amount=10_000, title="첫 미션")
    await settle_all(container)
    token = streamer.token
    app = create_app(container)
    async with browsing(app, lang, viewport, token=token) as browser:
        studio = await browser.page(f"/studio?lang={lang}")
        await _text(studio, "#studio-missions .mission-card", "첫 미션")
        await _text(studio, "#live-status.on", words["live"])
        await _text(studio, "#overlay-status", words["overlay_off"])
        channel = await browser.page(f"/channels/{streamer.id}?lang={lang}")
        await _text(channel, "#live-status.on", words["live"])

        # A new proposal shows in the studio (with a notice) and on the channel page.
        second = await propose(client, fan, streamer, amount=20_000, title="두 번째 <미션>")
        await settle_all(container)
        await _text(studio, "#studio-missions .mission-card", "두 번째 <미션>")
        await _text(studio, "#toast", words["proposal"])
        await _text(channel, "#open-missions .mission-card", "두 번째 <미션>")

        # A pledge moves both pages' totals.
        await _pledge(client, fan, first["id"], 5_000)
        await settle_all(container)
        card = f".mission-card[data-mission-id='{first['id']}'] .total"
        await _text(studio, card, _won(lang, 15_000))
        await _text(channel, card, _won(lang, 15_000))

        # The streamer rejects on the mission page: 정산 중 at first, then settled, live.
        page = await browser.page(f"/missions/{second['id']}?lang={lang}")
        await _text(page, "#live-status.on", words["live"])
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        await page.click("[data-op=reject]")
        await _text(page, "#mission-card .badge", words["pending"])
        await settle_all(container)
        await _text(page, "#mission-card .badge", words["settled"])
        await _text(page, "#mission-card .badge", words["rejected"])

        # The channel page moves it to past missions; the studio drops it.
        await _text(channel, "#past-missions .mission-card", "두 번째 <미션>")
        await channel.locator("#open-missions .mission-card", has_text="두 번째").wait_for(
            state="detached", timeout=TIMEOUT_MS)
        await studio.locator("#studio-missions .mission-card", has_text="두 번째").wait_for(
            state="detached", timeout=TIMEOUT_MS)
        assert browser.documents == [f"/studio?lang={lang}", f"/channels/{streamer.id}?lang={lang}",
                                     f"/missions/{second['id']}?lang={lang}"]


@pytest.mark.parametrize("settings_overrides", [{"sse_max_per_address": 1}])
async def test_a_refused_stream_is_reopened_and_the_page_says_so_meanwhile(
    client: httpx.AsyncClient, container: Container, settings_overrides: dict[str, object]
) -> None:
    """A second page from the same address is refused (429): EventSource gives up, the page
    does not; it says it is reconnecting, then follows the mission once a slot is free."""
    streamer = await make_user(container, "streamer")
    creator = await make_user(container, name="제안왕")
    await top_up(client, creator, 100_000)
    mission = await propose(client, creator, streamer, amount=10_000)
    await settle_all(container)
    async with browsing(create_app(container), "ko", PHONE) as browser:
        first = await browser.page(f"/missions/{mission['id']}")
        await _text(first, "#live-status.on", WORDS["ko"]["live"])
        second = await browser.page(f"/missions/{mission['id']}")
        await _text(second, "#live-status.down", "다시 연결하는 중")
        await first.close()
        await _text(second, "#live-status.on", WORDS["ko"]["live"])
        await _pledge(client, creator, mission["id"], 3_000)
        await settle_all(container)
        await _text(second, "#mission-card .total", _won("ko", 13_000))
        # The refusal reached the console as a failed request, not a script error.
        browser.errors[:] = [e for e in browser.errors if "429" not in e]


async def test_a_burst_shares_few_reloads_and_a_reload_keeps_what_the_viewer_types(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container, name="제안왕")
    fans = [await make_user(container, name=f"팬{n}") for n in range(3)]
    viewer = await make_user(container, name="보는이")
    for who in (creator, *fans, viewer):
        await top_up(client, who, 200_000)
    mission = await propose(client, creator, streamer, amount=10_000)
    mid = mission["id"]
    await settle_all(container)
    token = viewer.token
    async with browsing(create_app(container), "ko", DESKTOP, token=token) as browser:
        page = await browser.page(f"/missions/{mid}")
        await _text(page, "#live-status.on", WORDS["ko"]["live"])
        refetches: list[str] = []
        page.on("request", lambda r: refetches.append(r.url)
                if r.resource_type == "fetch" and f"/missions/{mid}" in r.url
                and not r.url.endswith("/events") and "/api/" not in r.url else None)

        # The viewer is typing an amount when the streamer accepts: the pledge section is
        # re-rendered, and the typed amount and the focus stay.
        amount = page.locator("form[data-form=pledge] input[name=amount]")
        await amount.fill("7000")
        r = await client.post(f"/api/v1/missions/{mid}/accept", headers=streamer.headers)
        assert r.status_code == 200, r.text
        await settle_all(container)
        await _text(page, "#mission-card .badge", "수락됨")
        assert await amount.input_value() == "7000"
        assert await page.evaluate("document.activeElement.name") == "amount"
        assert refetches, "the accepted mission was re-rendered from the server"

        # Thirty pledges at once: the total follows each, the page is fetched a few times.
        refetches.clear()
        for n in range(30):
            await _pledge(client, fans[n % 3], mid, 1_000)
        await settle_all(container)
        await _text(page, "#mission-card .total", _won("ko", 40_000))
        await page.locator("#backers tbody tr").nth(30).wait_for(timeout=TIMEOUT_MS)
        await page.wait_for_timeout(2_500)
        # Without coalescing, one fetch per pledge (30); a loaded machine relays the burst
        # over a few seconds, hence a few fetches rather than one.
        assert 1 <= len(refetches) <= 6, refetches
        rows = await page.locator("#backers tbody tr").count()
        assert rows == 31  # each pledge once
        assert await amount.input_value() == "7000"


@pytest.mark.parametrize(("lang", "viewport", "outcome"), [
    ("en", PHONE, "failure"), ("ko", DESKTOP, "expired")], ids=_ids)
async def test_a_failed_or_expired_mission_page_ends_on_its_settled_state(
    client: httpx.AsyncClient, container: Container, clock: Any, lang: str,
    viewport: dict[str, int], outcome: str,
) -> None:
    final = {"ko": {"failure": "실패", "expired": "만료"},
             "en": {"failure": "Failed", "expired": "Expired"}}[lang][outcome]
    streamer = await make_user(container, "streamer")
    creator = await make_user(container, name="제안왕")
    await top_up(client, creator, 100_000)
    mission = await propose(client, creator, streamer, amount=10_000, duration=600)
    mid = mission["id"]
    r = await client.post(f"/api/v1/missions/{mid}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    await settle_all(container)
    async with browsing(create_app(container), lang, viewport) as browser:
        page = await browser.page(f"/missions/{mid}?lang={lang}")
        await _text(page, "#live-status.on", WORDS[lang]["live"])
        if outcome == "failure":
            r = await client.post(f"/api/v1/missions/{mid}/result", headers=streamer.headers,
                                  json={"outcome": "failure"})
            assert r.status_code == 200, r.text
        else:  # past the result deadline: the worker's sweep expires and refunds it
            clock.advance(600 + container.settings.result_grace_seconds + 1)
        await settle_all(container)
        await _text(page, "#mission-card .badge", WORDS[lang]["settled"])
        await _text(page, "#mission-card .badge", final)
        assert await page.locator("#mission-card", has_text=WORDS[lang]["pending"]).count() == 0
        assert browser.documents == [f"/missions/{mid}?lang={lang}"]
