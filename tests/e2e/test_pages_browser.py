"""The web pages in a real browser: headless Chromium (Debian's ``chromium``) via Playwright.

A viewer signs up and logs in through the pages, tops up (a double click pays once),
proposes a mission on a channel and sees it listed; four fresh tabs refresh the session at
the same moment without revoking it. Saves a screenshot (to docs/images/web-channel.png with MISSIONLINK_UPDATE_SCREENSHOTS=1).
Skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.sse import live_server
from tests.helpers import Actor, make_user, screenshot_path, top_up

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 10_000
TITLE = "매운 라면 10봉 먹기 <도전!>"

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


async def _furnish(client: httpx.AsyncClient, container: Container, streamer: Actor) -> None:
    """Another fan's mission and some posts, so the channel looks lived in."""
    fan = await make_user(container, name="열혈팬")
    await top_up(client, fan, 200_000)
    r = await client.post("/api/v1/missions", headers=fan.headers, json={
        "streamer_id": streamer.id, "title": "Speedrun any% in under 2 hours",
        "description": "", "amount": 30_000, "duration_seconds": 86_400})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/missions/{r.json()['id']}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    for title in ("오늘 방송 최고였어요", "<script>alert('hi')</script> 는 그냥 글자예요"):
        r = await client.post(f"/api/v1/channels/{streamer.id}/posts", headers=fan.headers,
                              json={"title": title, "body": "본문"})
        assert r.status_code == 201, r.text


async def _ready(page: Any, url: str) -> None:
    await page.goto(url)
    await page.wait_for_selector("body[data-ready]", state="attached", timeout=TIMEOUT_MS)


async def test_a_viewer_signs_up_tops_up_and_proposes_a_mission(
    client: httpx.AsyncClient, container: Container, tmp_path: Path
) -> None:
    streamer = await make_user(container, "streamer", name="라면왕")
    await _furnish(client, container, streamer)
    errors: list[str] = []
    async with live_server(create_app(container)) as base, playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 1000},
                                                locale="ko-KR", timezone_id="Asia/Seoul")

            def watch(page: Any) -> None:
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))

            context.on("page", watch)
            loads: list[str] = []
            context.on("request", lambda r: loads.append(r.url)
                       if r.resource_type == "document" else None)
            posts: list[tuple[str, str | None]] = []
            context.on("request", lambda r: posts.append(
                (r.url.removeprefix(base), r.headers.get("idempotency-key")))
                if r.method == "POST" else None)
            page = await context.new_page()

            # Sign up (which logs in), log out, log in again through the login page.
            await _ready(page, base + "/signup")
            await page.fill("input[name=email]", "newbie@example.com")
            await page.fill("input[name=password]", "correct horse battery")
            await page.fill("input[name=display_name]", "새내기")
            await page.click("form[data-form=signup] button[type=submit]")
            await page.wait_for_url(base + "/", timeout=TIMEOUT_MS)
            await page.locator("#me-name", has_text="새내기").wait_for(timeout=TIMEOUT_MS)
            await page.click("[data-action=logout]")
            await page.locator("a[href='/login']").first.wait_for(timeout=TIMEOUT_MS)
            await _ready(page, base + "/login?next=/wallet")
            await page.fill("input[name=email]", "newbie@example.com")
            await page.fill("input[name=password]", "correct horse battery")
            await page.click("form[data-form=login] button[type=submit]")
            await page.wait_for_url(base + "/wallet", timeout=TIMEOUT_MS)

            cookies = {c["name"]: c for c in await context.cookies()}
            refresh = cookies["ml_refresh"]
            assert refresh["httpOnly"] and refresh["secure"]
            assert refresh["sameSite"] == "Strict" and refresh["path"] == "/api/v1/auth"
            assert "missionlink-access" not in await page.evaluate("JSON.stringify(localStorage)")

            # Top up with a double click: one submission, one top-up.
            await page.locator("#points-balance", has_text="1,000").wait_for(timeout=TIMEOUT_MS)
            await page.fill("form[data-form=topup] input[name=amount]", "50000")
            await page.dblclick("form[data-form=topup] button[type=submit]")
            await page.locator("#cash-balance", has_text="50,000원").wait_for(timeout=TIMEOUT_MS)
            await page.locator("#journal tbody tr", has_text="충전").first.wait_for()
            assert await page.locator("#journal tbody tr", has_text="충전").count() == 1

            # Propose a mission on the channel; the page lists it.
            await _ready(page, f"{base}/channels/{streamer.id}")
            form = page.locator("form[data-form=propose]")
            await form.wait_for(timeout=TIMEOUT_MS)
            await form.locator("input[name=title]").fill(TITLE)
            await form.locator("textarea[name=description]").fill("10분 안에 다 먹으면 성공!")
            await form.locator("input[name=amount]").fill("20000")
            await form.locator("input[name=duration]").fill("2")
            await form.locator("button[type=submit]").click()
            card = page.locator("#open-missions .mission-card", has_text=TITLE)
            await card.wait_for(timeout=TIMEOUT_MS)
            assert "20,000원" in await card.inner_text()
            assert "수락 대기" in await card.inner_text()
            await card.locator(".countdown").filter(has_text=":").wait_for(timeout=TIMEOUT_MS)
            await page.locator("#toast", has_text="미션을 제안했습니다").wait_for()
            await page.locator("[data-op=cancel]").first.wait_for()  # the creator may cancel
            await page.wait_for_timeout(300)
            shot = screenshot_path("web-channel.png", tmp_path)
            await page.screenshot(path=str(shot))

            # The language toggle switches to English and is remembered.
            await page.click("[data-action=lang]")
            await page.wait_for_function("document.documentElement.lang === 'en'")
            await _ready(page, base + "/")
            assert await page.evaluate("document.documentElement.lang") == "en"
            assert "Recent missions" in await page.inner_text("main")

            # Four fresh tabs refresh at once: the Web Lock serialises them, so none presents
            # a spent refresh token, and a fifth tab still gets a session afterwards. A tab
            # waiting for the lock takes the token another tab shares and never reloads (a
            # reload could abort its own refresh after the server rotated the token).
            tabs = [await context.new_page() for _ in range(4)]
            loads.clear()
            await asyncio.gather(*(_ready(tab, base + "/wallet") for tab in tabs))
            for tab in [*tabs, await context.new_page()]:
                if tab.url == "about:blank":
                    await _ready(tab, base + "/wallet")
                await tab.locator("#cash-balance", has_text="30,000 KRW").wait_for(
                    timeout=TIMEOUT_MS)
            assert loads == [base + "/wallet"] * 5
        finally:
            await browser.close()
    assert not errors, errors
    effects = [(url, key) for url, key in posts if not url.startswith("/api/v1/auth/")]
    assert [url for url, _ in effects] == ["/api/v1/wallet/topups", "/api/v1/missions"]
    assert all(key and len(key) == 36 for _, key in effects), effects
    assert any(url == "/api/v1/auth/refresh?cookie=1" for url, _ in posts)
    r = await client.get("/api/v1/missions", params={"streamer_id": streamer.id})
    mine = [m for m in r.json()["items"] if m["title"] == TITLE]
    assert len(mine) == 1 and mine[0]["total_pledged"] == 20_000
    assert mine[0]["deadline_at"] is not None
