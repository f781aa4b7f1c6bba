"""A streamer's profile, the directory search and the quick pledge amounts in a real browser.

Headless Chromium (Debian's ``chromium``) via Playwright, at 1280x800 and 390x844, in Korean
and English: the streamer edits the intro and channel link in the studio (a bad link is
refused before sending, in the page's language) and the channel page shows them; the
directory finds a streamer by part of the name; a viewer builds an amount from the quick
buttons and pledges it, and the open channel page ranks them first among its top backers
without a reload. Nothing is wider than the screen. Skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.sse import live_server
from tests.helpers import (
    Actor,
    browser_matrix,
    make_user,
    propose,
    screenshot_path,
    settle_all,
    top_up,
)

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 10_000
WORDS = {
    "ko": {"locale": "ko-KR", "saved": "저장했습니다", "bad_link": "채널의 https:// 주소만",
           "chzzk": "치지직 채널", "results": "스트리머 검색 결과", "placeholder": "최소 1,000원",
           "minimum": "최소 1,000원 · 최대 1,000,000원", "won": "원",
           "quick": ["+1천", "+5천", "+1만", "+5만"], "clear": "지우기",
           "pledged": "12,000원", "top": "후원 랭킹"},
    "en": {"locale": "en-US", "saved": "Saved", "bad_link": "Only an https:// address",
           "chzzk": "CHZZK channel", "results": "Streamers matching",
           "placeholder": "At least 1,000 KRW", "minimum": "Min 1,000 KRW · max 1,000,000 KRW",
           "won": " KRW", "quick": ["+1,000", "+5,000", "+10,000", "+50,000"],
           "clear": "Clear", "pledged": "12,000 KRW", "top": "Top backers"},
}
INTRO = "매일 밤 9시 라면 방송 <b>굵게</b>\nSecond line"

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


class Session:
    """One browser context (one user, or nobody) with its errors and API writes recorded."""

    def __init__(self, context: Any, base: str) -> None:
        self.context = context
        self.base = base
        self.errors: list[str] = []
        self.writes: list[str] = []
        context.on("request", lambda r: self.writes.append(f"{r.method} {r.url.removeprefix(base)}")
                   if r.method in ("POST", "PATCH") and "/api/v1/auth/" not in r.url else None)

    async def page(self, path: str) -> Any:
        page = await self.context.new_page()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        await page.goto(self.base + path)
        await page.wait_for_selector("body[data-ready]", state="attached", timeout=TIMEOUT_MS)
        return page


@contextlib.asynccontextmanager
async def browser(container: Container, lang: str,
                  viewport: dict[str, int]) -> AsyncIterator[Any]:
    async with live_server(create_app(container)) as base, \
            playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM),
                                           args=["--no-sandbox", "--disable-gpu"])
        sessions: list[Session] = []

        async def session(who: Actor | None) -> Session:
            context = await chromium.new_context(viewport=viewport,
                                                 locale=WORDS[lang]["locale"],
                                                 timezone_id="Asia/Seoul")
            await context.add_cookies([{"name": "ml_lang", "value": lang, "url": base}])
            if who is not None:
                token = who.token
                saved = json.dumps({"token": token, "exp": (time.time() + 600) * 1000})
                await context.add_init_script(
                    f"sessionStorage.setItem('missionlink-access', {json.dumps(saved)})")
            sessions.append(Session(context, base))
            return sessions[-1]

        try:
            yield session
            for s in sessions:
                assert not s.errors, s.errors
        finally:
            await chromium.close()


async def _fits(page: Any, viewport: dict[str, int]) -> None:
    """Nothing makes the page scroll sideways."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], width


@pytest.mark.parametrize(("lang", "viewport"), browser_matrix(),
                         ids=lambda v: f"{v['width']}x{v['height']}" if isinstance(v, dict) else v)
async def test_profile_directory_and_quick_amounts_in_the_browser(
    client: httpx.AsyncClient, container: Container, tmp_path: Path, lang: str,
    viewport: dict[str, int]
) -> None:
    words = WORDS[lang]
    size = "phone" if viewport["width"] < 600 else "desktop"
    streamer = await make_user(container, "streamer", name="라면왕 Ramen King")
    await make_user(container, "streamer", name="Speedrunner")
    fan = await make_user(container, name="열혈팬 <i>1</i>")
    viewer = await make_user(container, name="Quick Tapper")
    await top_up(client, fan, 100_000)
    await top_up(client, viewer, 100_000)
    mission = await propose(client, fan, streamer, amount=5_000, duration=86_400)

    async with browser(container, lang, viewport) as session:
        # The streamer edits the profile in the studio.
        studio = await session(streamer)
        page = await studio.page("/studio")
        form = page.locator("form[data-form=profile][data-loaded]")
        await form.wait_for(timeout=TIMEOUT_MS)
        await form.locator("textarea[name=intro]").fill(INTRO)
        await form.locator(".intro-count", has_text=f"{len(INTRO)}/500").wait_for(
            timeout=TIMEOUT_MS)
        link = form.locator("input[name=link]")
        await link.fill("https://chzzk.naver.com.evil.example/abc")
        await form.locator("button[type=submit]").click()
        await form.locator(".form-error", has_text=words["bad_link"]).wait_for(
            timeout=TIMEOUT_MS)
        assert await page.evaluate("document.activeElement.name") == "link"
        assert studio.writes == [], "a bad link is refused before sending"
        await link.fill("HTTPS://chzzk.naver.com/abc123")
        await form.locator("button[type=submit]").click()
        await page.locator("#toast", has_text=words["saved"]).wait_for(timeout=TIMEOUT_MS)
        assert studio.writes == ["PATCH /api/v1/streamers/me/profile"]
        assert await link.input_value() == "https://chzzk.naver.com/abc123"  # as stored
        assert await form.locator(".form-error").is_hidden()
        await _fits(page, viewport)

        # The channel page shows it to anyone, escaped, with the link marked as user content.
        anyone = await session(None)
        page = channel = await anyone.page(f"/channels/{streamer.id}")
        await channel.evaluate("window.notReloaded = true")
        intro = page.locator("#channel-intro")
        assert await intro.inner_text() == INTRO
        anchor = page.locator("#channel-link")
        assert await anchor.get_attribute("href") == "https://chzzk.naver.com/abc123"
        assert await anchor.get_attribute("rel") == "noopener nofollow ugc"
        assert words["chzzk"] in await anchor.inner_text()
        assert await page.locator("#channel-intro b").count() == 0
        await _fits(page, viewport)

        # The directory finds the streamer by part of the name, case-insensitively.
        page = await anyone.page("/")
        search = page.locator("#directory-search input[name=q]")
        await search.fill("ramen")
        await search.press("Enter")
        await page.wait_for_url("**/?q=ramen", timeout=TIMEOUT_MS)
        cards = page.locator(".streamer-card")
        assert await cards.count() == 1
        card_text = await cards.first.inner_text()
        assert "라면왕 Ramen King" in card_text and words["chzzk"] in card_text
        assert words["results"] in await page.inner_text("main")
        await _fits(page, viewport)

        # A viewer builds 12,000 from the quick buttons and pledges it.
        tapper = await session(viewer)
        page = await tapper.page(f"/missions/{mission['id']}")
        pledge = page.locator("form[data-form=pledge]")
        await pledge.wait_for(timeout=TIMEOUT_MS)
        amount = pledge.locator("input[name=amount]")
        assert await amount.input_value() == ""
        assert await amount.get_attribute("placeholder") == words["placeholder"]
        assert words["minimum"] in await pledge.inner_text()
        buttons = pledge.locator("[data-add-amount]")
        assert await buttons.all_inner_texts() == words["quick"]
        for i in range(4):  # every button on screen, none cut off at phone width
            box = await buttons.nth(i).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        await buttons.nth(2).click()  # +1만
        await buttons.nth(1).click()  # +5천
        assert await amount.input_value() == "15000"
        await pledge.locator("[data-clear-amount]", has_text=words["clear"]).click()
        assert await amount.input_value() == ""
        await amount.fill("2000")
        await buttons.nth(2).click()  # adds to what was typed
        assert await amount.input_value() == "12000"
        await _fits(page, viewport)
        if lang == "ko":
            await pledge.screenshot(path=str(screenshot_path(
                f"web-pledge-quick-amounts-{size}.png", tmp_path)))
        await pledge.locator("button[type=submit]").click()
        await page.locator("#backers tr", has_text="Quick Tapper").wait_for(timeout=TIMEOUT_MS)
        assert tapper.writes == [f"POST /api/v1/missions/{mission['id']}/pledges"]
        r = await client.get(f"/api/v1/missions/{mission['id']}/pledges")
        newest = r.json()["items"][0]
        assert (newest["display_name"], newest["amount"]) == ("Quick Tapper", 12_000)

        # The channel page open since before the pledge ranks the viewer first, live (the
        # worker relays the pledge's event to the channel's stream).
        await settle_all(container)
        top = channel.locator("#top-backers")
        await top.locator("li", has_text="Quick Tapper").wait_for(timeout=TIMEOUT_MS)
        assert await channel.evaluate("window.notReloaded === true")
        page = channel
        assert words["top"] in await top.inner_text()
        rows = await top.locator("li").all_inner_texts()
        assert "Quick Tapper" in rows[0] and words["pledged"] in rows[0]
        assert "열혈팬 <i>1</i>" in rows[1]
        assert await page.locator("#top-backers i").count() == 0
        await _fits(page, viewport)
        if lang == "ko":
            await page.screenshot(path=str(screenshot_path(f"web-channel-profile-{size}.png",
                                                           tmp_path)), full_page=True)
