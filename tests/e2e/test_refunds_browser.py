"""The wallet page's refund button in headless Chromium (Debian's ``chromium``), in Korean
on a phone and English on a desktop: a completed top-up offers its refundable amount, the
fan confirms, and the page lists the refund with its state and the new balance. The
sandbox provider refunds at once. Skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.sse import live_server
from tests.helpers import browser_matrix, make_user, screenshot_path, top_up

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 10_000
WORDS = {
    "ko": {"locale": "ko-KR", "button": "환불 요청 (20,000원)", "state": "환불 완료",
           "balance": "0원"},
    "en": {"locale": "en-US", "button": "Request refund (20,000 KRW)", "state": "Refunded",
           "balance": "0 KRW"},
}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


@pytest.mark.parametrize(("lang", "viewport"), browser_matrix(),
                         ids=lambda v: f"{v['width']}x{v['height']}" if isinstance(v, dict) else v)
async def test_a_fan_refunds_a_top_up_from_the_wallet_page(
    client: httpx.AsyncClient, container: Container, tmp_path: Path, lang: str,
    viewport: dict[str, int],
) -> None:
    words = WORDS[lang]
    fan = await make_user(container)
    await top_up(client, fan, 20_000)
    errors: list[str] = []
    async with live_server(create_app(container)) as base, \
            playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM),
                                          args=["--no-sandbox", "--disable-gpu"])
        try:
            context = await browser.new_context(viewport=viewport, locale=words["locale"],
                                                timezone_id="Asia/Seoul")
            await context.add_cookies([{"name": "ml_lang", "value": lang, "url": base}])
            token = fan.token
            saved = json.dumps({"token": token, "exp": (time.time() + 600) * 1000})
            await context.add_init_script(
                f"sessionStorage.setItem('missionlink-access', {json.dumps(saved)})")
            page = await context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            dialogs: list[str] = []

            async def accept(dialog: Any) -> None:
                dialogs.append(dialog.message)
                await dialog.accept()

            page.on("dialog", accept)
            await page.goto(f"{base}/wallet")
            button = page.locator("#topups button[data-action=refund]")
            await button.wait_for(timeout=TIMEOUT_MS)
            assert await button.inner_text() == words["button"]
            await button.click()
            await page.locator("#refunds tr[data-state=succeeded]", has_text=words["state"]) \
                .wait_for(timeout=TIMEOUT_MS)
            await page.locator("#cash-balance", has_text=words["balance"]).wait_for(
                timeout=TIMEOUT_MS)
            assert await page.locator("#topups button[data-action=refund]").count() == 0
            assert len(dialogs) == 1 and "20,000" in dialogs[0]
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], width
            size = "phone" if viewport["width"] < 600 else "desktop"
            await page.screenshot(path=str(screenshot_path(f"wallet-refund-{lang}-{size}.png",
                                                           tmp_path)), full_page=True)
        finally:
            await browser.close()
    assert not errors, errors
    r = await client.get("/api/v1/wallet/refunds", headers=fan.headers)
    assert [(x["amount"], x["state"]) for x in r.json()["items"]] == [(20_000, "succeeded")]
