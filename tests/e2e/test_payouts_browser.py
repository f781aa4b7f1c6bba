"""The studio's payouts page in a real browser: a streamer registers a payout account,
sees the tax a withdrawal will have withheld before sending, withdraws, and opens the
printable yearly statement. Headless Chromium via Playwright, Korean on a phone and
English on a desktop (``browser_matrix``). Skipped when Playwright or Chromium is missing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.services.wallet import KST
from tests.e2e.test_pages_live_browser import CHROMIUM, _ids, _text, browsing
from tests.e2e.test_payouts import PAYOUT_SETTINGS, _earn
from tests.helpers import browser_matrix, make_user

WORDS = {
    "ko": {"won": "원", "requested": "신청됨", "net": "48,350원 입금", "total": "합계"},
    "en": {"won": " KRW", "requested": "Requested", "net": "48,350 KRW to your account",
           "total": "Total"},
}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return dict(PAYOUT_SETTINGS)


@pytest.mark.parametrize(("lang", "viewport"), browser_matrix(), ids=_ids)
async def test_a_streamer_registers_an_account_and_withdraws_on_the_payouts_page(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, lang: str,
    viewport: dict[str, int], tmp_path: Any,
) -> None:
    words = WORDS[lang]
    streamer = await make_user(container, "streamer", name="라면왕", language=lang)
    await _earn(client, container, streamer, 100_000)
    year = clock.now().astimezone(KST).year
    clock.advance(8 * 86_400)
    token = streamer.token

    async with browsing(create_app(container), lang, viewport, token=token) as browser:
        page = await browser.page(f"/studio/payouts?lang={lang}")
        await _text(page, "#payout-withdrawable", f"90,000{words['won']}")
        form = page.locator("form[data-form=payout-account]")
        await form.locator("select[name=bank_code]").select_option("088")
        await form.locator("input[name=account_number]").fill("110-1234-56789")
        await form.locator("input[name=holder]").fill("김라면")
        await form.locator("button[type=submit]").click()
        await _text(page, "#payout-account-now", "***-****-6789")

        withdraw = page.locator("form[data-form=withdraw]")
        await withdraw.locator("input[name=amount]").fill("50000")
        await _text(page, "#withdraw-preview", words["net"])
        await withdraw.locator("button[type=submit]").click()
        await _text(page, "#withdrawals tbody tr[data-state=requested]", words["requested"])
        await _text(page, "#payout-withdrawable", f"40,000{words['won']}")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"]

        statement = await browser.page(f"/studio/payouts/statement/{year}?lang={lang}")
        await _text(statement, "#statement tfoot", words["total"])
        assert "100,000" in (await statement.locator("#statement tfoot").inner_text())
        assert browser.errors == []
    mine = (await client.get("/api/v1/me/withdrawals", headers=streamer.headers)).json()
    assert [(w["gross"], w["net"]) for w in mine["items"]] == [(50_000, 48_350)]
