"""A pledge with a message, anonymously, through the mission page in a real browser, and
the streamer hiding the message from their own page (headless Chromium via Playwright, at
1280x800 and 390x844, in Korean and English). Skipped when Playwright or
/usr/bin/chromium is missing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.test_pages_live_browser import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    TIMEOUT_MS,
    _ids,
    _text,
    browsing,
    playwright_api,
)
from tests.helpers import assert_ledger_ok, make_user, propose, settle_all, top_up

WORDS = {"ko": {"anonymous": "익명", "hidden": "스트리머가 숨긴 메시지입니다.",
                "hide": "메시지 숨기기"},
         "en": {"anonymous": "Anonymous", "hidden": "Hidden by the streamer.",
                "hide": "Hide message"}}
MESSAGE = "<i>끝까지</i> 화이팅 fuck"
SHOWN = "<i>끝까지</i> 화이팅 ****"

assert playwright_api is not None
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


@pytest.mark.parametrize(("lang", "viewport"), [("ko", PHONE), ("en", DESKTOP)], ids=_ids)
async def test_a_fan_pledges_with_a_message_anonymously_and_the_streamer_hides_it(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int]
) -> None:
    streamer = await make_user(container, "streamer", name="스트리머")
    creator = await make_user(container, name="제안왕")
    fan = await make_user(container, name="숨은팬")
    for who in (creator, fan):
        await top_up(client, who, 100_000)
    mission = await propose(client, creator, streamer, amount=10_000)
    mid = mission["id"]
    await settle_all(container)
    app = create_app(container)

    fan_token = fan.token
    async with browsing(app, lang, viewport, token=fan_token) as browser:
        page = await browser.page(f"/missions/{mid}?lang={lang}")
        form = page.locator("form[data-form=pledge]")
        await form.locator("input[name=amount]").fill("3000")
        await form.locator("input[name=message]").fill(MESSAGE)
        await form.locator("input[name=anonymous]").check()
        await form.locator("button[type=submit]").click()
        row = page.locator("#backers tbody tr", has_text=SHOWN)
        await row.wait_for(timeout=TIMEOUT_MS)
        assert WORDS[lang]["anonymous"] in await row.inner_text()
        assert "숨은팬" not in await page.locator("#backers").inner_text()
        # Text, never markup: no <i> element came from the message.
        assert await page.locator("#backers i").count() == 0
        # Only the mission's streamer sees the hide button.
        assert not await row.locator("button[data-action=hide-message]").is_visible()

    streamer_token = streamer.token
    async with browsing(app, lang, viewport, token=streamer_token) as browser:
        page = await browser.page(f"/missions/{mid}?lang={lang}")
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        row = page.locator("#backers tbody tr", has_text=SHOWN)
        await row.locator("button[data-action=hide-message]", has_text=WORDS[lang]["hide"]
                          ).click()
        await _text(page, "#backers .pledge-message", WORDS[lang]["hidden"])
        assert SHOWN not in await page.locator("#backers").inner_text()
    await settle_all(container)
    await assert_ledger_ok(container)
