"""The wallet page reads like a statement, in a real browser: what is held in escrow, the
journal's mission titles and a refunded mission that says so.

Headless Chromium (Debian's ``chromium``) via Playwright, Korean on a phone and English on a
desktop (``browser_matrix``). Skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.test_pages_live_browser import CHROMIUM, TIMEOUT_MS, _ids, _pledge, browsing
from tests.helpers import browser_matrix, make_user, propose, settle_all, top_up

WORDS = {
    "ko": {"escrow": "보관 중인 후원금", "total": "7,000원", "pending": "수락 대기",
           "refunded": "환불됨", "refund": "환불"},
    "en": {"escrow": "Held in escrow", "total": "7,000 KRW", "pending": "Awaiting acceptance",
           "refunded": "Refunded", "refund": "Refund"},
}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"proposal_cooldown_seconds": 0}


@pytest.mark.parametrize(("lang", "viewport"), browser_matrix(), ids=_ids)
async def test_the_wallet_shows_escrow_and_titles_and_a_refunded_mission_says_so(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int],
) -> None:
    words = WORDS[lang]
    streamer = await make_user(container, "streamer", name="라면왕")
    fan = await make_user(container, name="열혈팬")
    await top_up(client, fan, 50_000)
    held = await propose(client, fan, streamer, amount=5_000, title="아직 열린 <b>미션</b>")
    await _pledge(client, fan, held["id"], 2_000)
    gone = await propose(client, fan, streamer, amount=3_000, title="거절된 미션")
    r = await client.post(f"/api/v1/missions/{gone['id']}/reject", headers=streamer.headers)
    assert r.status_code == 200, r.text
    await settle_all(container)

    async with browsing(create_app(container), lang, viewport, token=fan.token) as browser:
        page = await browser.page(f"/wallet?lang={lang}")
        escrow = page.locator("#escrow")
        await escrow.locator("#escrow-items tbody tr").first.wait_for(timeout=TIMEOUT_MS)
        assert words["escrow"] in await escrow.locator("h2").inner_text()
        assert await page.locator("#escrow-total").inner_text() == words["total"]
        rows = escrow.locator("#escrow-items tbody tr")
        assert await rows.count() == 1
        row = await rows.first.inner_text()
        assert "아직 열린 <b>미션</b>" in row and words["pending"] in row
        assert await escrow.locator("b").count() == 0, "titles are text, never markup"

        journal = page.locator("#journal tbody tr")
        await page.locator("#journal tbody tr", has_text="거절된 미션").first.wait_for(
            timeout=TIMEOUT_MS)
        texts = [await journal.nth(i).inner_text() for i in range(await journal.count())]
        assert not any(f"#{gone['id']}" in x or f"#{held['id']}" in x for x in texts), texts
        assert any(words["refund"] in x and "거절된 미션" in x for x in texts), texts
        link = page.locator("#journal a.journal-title", has_text="거절된 미션").first
        assert await link.get_attribute("href") == f"/missions/{gone['id']}"
        overflow = await page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= viewport["width"]

        page = await browser.page(f"/missions/{gone['id']}?lang={lang}")
        refunded = page.locator("#mission-card .outcome-refunded dd")
        assert words["refunded"] in await refunded.inner_text()
