"""The wallet page of a fan a chargeback left in debt, in a real browser (Korean on a
phone, English on a desktop): the debt banner with its amount, the chargeback listed, and
the repay button that clears it. Skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from missionlink.adapters.db.core_tables import topups
from missionlink.adapters.payments.providers import ProviderDispute
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.services.chargebacks import apply_dispute
from tests.e2e.test_pages_live_browser import CHROMIUM, TIMEOUT_MS, _ids, _text, _won, browsing
from tests.helpers import (
    assert_ledger_ok,
    browser_matrix,
    make_user,
    propose,
    screenshot_path,
    settle_all,
    top_up,
    wallet,
)

WORDS = {"ko": {"debt": "미수금", "state": "이의 제기 중", "repaid": "모두 갚았습니다"},
         "en": {"debt": "Debt", "state": "Disputed", "repaid": "Repaid the debt"}}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


@pytest.mark.parametrize(("lang", "viewport"), browser_matrix(), ids=_ids)
async def test_the_wallet_shows_the_debt_and_repays_it(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int],
    tmp_path: Path,
) -> None:
    streamer, fan = await make_user(container, "streamer"), await make_user(container)
    await top_up(client, fan, 10_000)
    mission = await propose(client, fan, streamer, amount=10_000)
    async with container.core_db.begin() as conn:
        pid = await conn.scalar(select(topups.c.provider_payment_id)
                                .where(topups.c.user_id == fan.id))
        await apply_dispute(conn, provider="sandbox", now=container.clock.now(),
                            dispute=ProviderDispute("dp_browser", str(pid), 10_000, "KRW",
                                                    "opened", reason="fraudulent"))
    # The mission is rejected: its 10,000 comes back to cash, enough to repay.
    r = await client.post(f"/api/v1/missions/{mission['id']}/reject", headers=streamer.headers)
    assert r.status_code == 200, r.text
    await settle_all(container)
    token = fan.token
    words = WORDS[lang]
    async with browsing(create_app(container), lang, viewport, token=token) as browser:
        page = await browser.page(f"/wallet?lang={lang}")
        await _text(page, "#debt-banner", words["debt"])
        assert _won(lang, 10_000) in await page.inner_text("#debt-amount")
        await _text(page, "#chargebacks tbody tr[data-state=opened]", words["state"])
        assert await page.locator("#chargebacks-section").is_visible()
        await page.screenshot(path=str(screenshot_path(f"wallet-debt-{lang}.png", tmp_path)),
                              full_page=True)
        await page.click("#debt-banner [data-action=repay-debt]")
        await _text(page, "#toast", words["repaid"])
        await page.locator("#debt-banner").wait_for(state="hidden", timeout=TIMEOUT_MS)
        assert _won(lang, 0) in await page.inner_text("#cash-balance")
    assert await wallet(client, fan) == {"cash_balance": 0, "points_balance": 1000, "debt": 0}
    await assert_ledger_ok(container)
