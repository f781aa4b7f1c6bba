"""Every page passes axe-core with no serious or critical violation, and the mission page
works on a phone.

Headless Chromium (Debian's ``chromium``) via Playwright, at the sizes and languages of
``browser_matrix()``, on demo data made through the API (tests/e2e/demo.py): the
directory and its search, a channel, missions in several states, a post, log in and sign
up (also with their field errors shown), the wallet with its refund list, My page, the studio and the overlay,
as a visitor, a viewer and the streamer (the studio's payouts page and yearly statement
too), and an admin (the payouts page). One browser per size; one tab per person, walked
from page to page. On a 390x844 phone the pledge button of the mission page is within
the first screen and a half, and the header takes two rows at most. Skipped when
Playwright or /usr/bin/chromium is missing (axe-playwright-python is a development
dependency, so its absence is an error).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.a11y import blocking_violations
from tests.e2e.demo import Demo, Person, seed
from tests.e2e.sse import live_server
from tests.helpers import browser_matrix, make_user, settle_all

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 10_000
LOCALES = {"ko": "ko-KR", "en": "en-US"}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


def _ids(value: object) -> str:
    return f"{value['width']}x{value['height']}" if isinstance(value, dict) else str(value)


class Checker:
    """Runs axe on a tab's current page and collects the blocking violations."""

    def __init__(self) -> None:
        self.axe = Axe()
        self.found: list[str] = []
        self.checked: list[str] = []
        self.errors: list[str] = []

    async def tab(self, browser: Any, lang: str, viewport: dict[str, int],
                  who: Person | None) -> Any:
        context = await browser.new_context(viewport=viewport, locale=LOCALES[lang],
                                            timezone_id="Asia/Seoul")
        if who is not None:
            saved = json.dumps({"token": who.token, "exp": (time.time() + 600) * 1000})
            await context.add_init_script(
                f"sessionStorage.setItem('missionlink-access', {json.dumps(saved)})")
        page = await context.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page

    async def visit(self, page: Any, url: str, ready: str = "body[data-ready]") -> None:
        await page.goto(url)
        await page.wait_for_selector(ready, state="attached", timeout=TIMEOUT_MS)
        await self.check(page, url.split('//', 1)[1].partition('/')[2])

    async def check(self, page: Any, label: str) -> None:
        found = await blocking_violations(page, self.axe)
        self.checked.append(label)
        self.found.extend(f"{label}: {v}" for v in found)


async def _walk(checker: Checker, browser: Any, base: str, demo: Demo, lang: str,
                viewport: dict[str, int], pledge: Callable[[], Awaitable[None]]) -> None:
    q = f"?lang={lang}"
    m = demo.missions
    visitor = await checker.tab(browser, lang, viewport, None)
    for path in ("/", "/?q=라면&lang=" + lang, "/login", "/signup"):
        await checker.visit(visitor, base + path + ("" if "?" in path else q))
    # The sign-up form with every field's error shown at once.
    await visitor.fill("input[name=email]", "not-an-email")
    await visitor.click("form[data-form=signup] button[type=submit]")
    await visitor.locator(".field-error").first.wait_for(timeout=TIMEOUT_MS)
    await checker.check(visitor, "/signup (field errors)")
    overlay = demo.overlay_url.split("/overlay/", 1)[1]
    await checker.visit(visitor, f"{base}/overlay/{overlay}", ready="#missions li")
    # The overlay's alert for a new pledge, with its message.
    await pledge()
    await visitor.locator("#alert.show .message").wait_for(timeout=TIMEOUT_MS)
    await visitor.wait_for_timeout(400)  # the alert has faded in
    await checker.check(visitor, "overlay (alert)")

    viewer = await checker.tab(browser, lang, viewport, demo.viewer)
    for path in (f"/channels/{demo.streamer.id}", f"/missions/{m['live']}",
                 f"/missions/{m['rejected']}", f"/missions/{m['succeeded']}",
                 f"/posts/{demo.post_id}", "/me"):
        await checker.visit(viewer, base + path + q)
    # The wallet with its top-ups (a refund button each) and the list of refunds.
    await checker.visit(viewer, base + "/wallet" + q, ready="#refunds tbody tr")

    streamer = await checker.tab(browser, lang, viewport, demo.streamer)
    year = time.gmtime().tm_year
    for path in ("/studio", "/studio/payouts", f"/studio/payouts/statement/{year}",
                 f"/missions/{m['pending']}", f"/channels/{demo.streamer.id}"):
        await checker.visit(streamer, base + path + q)

    # The admin's payouts page (its rows and forms are checked in test_admin_payouts_browser).
    admin = await checker.tab(browser, lang, viewport, demo.admin)
    await checker.visit(admin, base + "/admin/payouts" + q,
                        ready="#admin-withdrawals-empty:not([hidden])")


@pytest.mark.parametrize(("lang", "viewport"), browser_matrix(), ids=_ids)
async def test_every_page_has_no_serious_accessibility_violation(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int],
) -> None:
    demo = await seed(client)
    await settle_all(container)
    admin = await make_user(container, "admin", name="운영자")
    demo.admin = Person(admin.id, admin.name, admin.token)
    checker = Checker()

    async def pledge() -> None:
        r = await client.post(f"/api/v1/missions/{demo.missions['live']}/pledges",
                              headers=demo.fan.headers,
                              json={"amount": 3_000, "message": "오늘도 응원해요!"})
        assert r.status_code == 201, r.text
        await settle_all(container)

    async with live_server(create_app(container)) as base, \
            playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM),
                                          args=["--no-sandbox", "--disable-gpu"])
        try:
            await _walk(checker, browser, base, demo, lang, viewport, pledge)
        finally:
            await browser.close()
    assert len(checker.checked) == 20, checker.checked
    assert not checker.found, "\n".join(checker.found)
    assert not checker.errors, checker.errors


@pytest.mark.parametrize(("lang", "viewport"), [("ko", {"width": 390, "height": 844})],
                         ids=_ids)
async def test_the_pledge_button_is_near_the_top_of_the_mission_page_on_a_phone(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int],
) -> None:
    demo = await seed(client)
    async with live_server(create_app(container)) as base, \
            playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM),
                                          args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await Checker().tab(browser, lang, viewport, demo.viewer)
            await page.goto(f"{base}/missions/{demo.missions['live']}?lang={lang}")
            button = page.locator("form[data-form=pledge] button[type=submit]")
            await button.wait_for(timeout=TIMEOUT_MS)
            box = await button.bounding_box()
            assert box is not None and box["y"] <= 900, box
            header = await page.locator(".site-header").bounding_box()
            assert header is not None and header["height"] <= 110, header
            # Secondary facts are folded away, one tap from view.
            assert await page.locator("#mission-card details.more-facts").count() == 1
            assert await page.locator("#mission-card .total").is_visible()
            assert await page.locator("#mission-card .countdown").is_visible()
            # Korean breaks between words, never inside one (미/션).
            breaks = await page.evaluate(
                "[...document.querySelectorAll('h1, .facts dt, .pledge-message, td')]"
                ".map((el) => getComputedStyle(el).wordBreak)")
            assert breaks and set(breaks) == {"keep-all"}, breaks
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], width
        finally:
            await browser.close()
