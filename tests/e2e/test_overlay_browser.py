"""The overlay in a real browser: headless Chromium (Debian's ``chromium``) via Playwright.

Loads the page, makes a pledge through the API, sees the alert, and saves a screenshot
(to docs/images/overlay.png when MISSIONLINK_UPDATE_SCREENSHOTS=1, else to a temporary
folder). Skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.sse import live_server
from tests.helpers import make_user, screenshot_path, settle_all, top_up

CHROMIUM = Path("/usr/bin/chromium")
# A dark backdrop behind the transparent page, for the screenshot only.
BACKDROP = "#1e2438"

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


async def _mission(client: httpx.AsyncClient, creator: Any, streamer: Any, title: str,
                   amount: int, duration: int) -> dict[str, Any]:
    r = await client.post("/api/v1/missions", headers=creator.headers, json={
        "streamer_id": streamer.id, "title": title, "amount": amount,
        "duration_seconds": duration})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_overlay_shows_missions_and_pops_an_alert_for_a_pledge(
    client: httpx.AsyncClient, container: Container, tmp_path: Path
) -> None:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container, name="제안자")
    backer = await make_user(container, name="열혈팬")
    await top_up(client, creator, 100_000)
    await top_up(client, backer, 100_000)
    spicy = await _mission(client, creator, streamer, "매운 라면 10봉 먹기 <도전!>", 30_000,
                           5400)
    await _mission(client, creator, streamer, "Speedrun any% in under 2 hours", 12_000, 86_400)
    await settle_all(container)
    r = await client.get("/api/v1/streamers/me/overlay", headers=streamer.headers)
    path = httpx.URL(r.json()["url"]).path
    errors: list[str] = []
    async with live_server(create_app(container)) as base, playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(base + path)
            cards = page.locator("#missions li")
            await cards.first.wait_for(timeout=10_000)
            assert await cards.count() == 2
            assert await cards.first.locator(".title").inner_text() == "매운 라면 10봉 먹기 <도전!>"
            await page.wait_for_function(
                "document.querySelector('#missions .countdown').textContent.includes(':')",
                timeout=10_000,
            )
            r = await client.post(f"/api/v1/missions/{spicy['id']}/pledges",
                                  json={"amount": 5_000}, headers=backer.headers)
            assert r.status_code == 201
            await settle_all(container)
            alert = page.locator("#alert.show")
            await alert.wait_for(timeout=10_000)
            text = await alert.inner_text()
            assert "열혈팬" in text and "5,000원" in text
            await page.wait_for_function(
                "document.querySelector('#missions .total').textContent.includes('35,000')",
                timeout=10_000,
            )
            await page.wait_for_timeout(500)  # let the alert finish sliding in
            await page.evaluate(f"document.documentElement.style.background = '{BACKDROP}'")
            shot = screenshot_path("overlay.png", tmp_path)
            await page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
        finally:
            await browser.close()
    assert not errors, errors


@pytest.mark.parametrize(("locale", "heading"), [
    ("ko-KR", "이 오버레이 주소는 더 이상 쓸 수 없습니다"),
    ("en-US", "This overlay URL no longer works"),
])
async def test_a_rotated_out_overlay_url_opens_a_readable_page(
    client: httpx.AsyncClient, container: Container, locale: str, heading: str
) -> None:
    streamer = await make_user(container, "streamer")
    r = await client.get("/api/v1/streamers/me/overlay", headers=streamer.headers)
    old = httpx.URL(r.json()["url"]).path
    r = await client.post("/api/v1/streamers/me/overlay/rotate", headers=streamer.headers)
    assert r.status_code == 200
    async with live_server(create_app(container)) as base, playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(locale=locale, viewport={"width": 390, "height": 844})
            response = await page.goto(base + old)
            assert response is not None and response.status == 404
            assert await page.locator("h1").inner_text() == heading
            await page.click("main a")
            await page.wait_for_url(f"{base}/studio?lang={locale[:2]}")
        finally:
            await browser.close()
