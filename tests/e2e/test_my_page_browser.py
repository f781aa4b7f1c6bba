"""A reject with a reason, seen by a backer, and My page, in a real browser.

Headless Chromium (Debian's ``chromium``) via Playwright, at 1280x800 and 390x844, in Korean
and English. The streamer types a reason next to the reject button on the mission page; the
page shows it (as text) without a reload. After settlement a backer opens My page: the recent
results say what came of each pledge and bet, with the streamer's reason, and the pledges,
bets and proposed missions list their outcomes, paged. Skipped when Playwright or
/usr/bin/chromium is missing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.test_pages_live_browser import (
    CHROMIUM,
    PHONE,
    TIMEOUT_MS,
    _ids,
    _pledge,
    _text,
    browsing,
)
from tests.helpers import (
    Actor,
    browser_matrix,
    make_user,
    propose,
    screenshot_path,
    settle_all,
    top_up,
)

REASON = "오늘은 <b>시간</b>이 없어요 & 다음에"
WORDS = {
    "ko": {"reason": "스트리머의 거절 사유:", "results": "최근 결과", "refunded": "10,000원 환불됨",
           "won": "적중 · 100 포인트 받음", "paid_out": "스트리머에게 지급됨", "lost": "적중 실패",
           "open": "진행 중", "nav": "마이 페이지", "result_reason": "거절 사유: ",
           "bad_reason": "사용할 수 없는 문자가 있습니다"},
    "en": {"reason": "The streamer's reason:", "results": "Recent results",
           "refunded": "10,000 KRW refunded", "won": "Won 100 points",
           "paid_out": "Paid out to the streamer", "lost": "Lost", "open": "In progress",
           "nav": "My page", "result_reason": "Reason: ",
           "bad_reason": "Contains characters that are not allowed"},
}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


async def _call(client: httpx.AsyncClient, who: Actor, path: str, body: Any = None) -> None:
    r = await client.post(f"/api/v1/missions/{path}", json=body, headers=who.headers)
    assert r.status_code in (200, 201), r.text


async def _fits(page: Any, width: int) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"the page is {overflow}px wide in a {width}px window"


@pytest.mark.parametrize(("lang", "viewport"), browser_matrix(), ids=_ids)
async def test_a_backer_sees_the_reject_reason_and_my_page_shows_outcomes(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int],
    tmp_path: Any,
) -> None:
    words = WORDS[lang]
    streamer = await make_user(container, "streamer", name="라면왕")
    creator = await make_user(container, name="제안왕")
    backer = await make_user(container, name="열혈팬", language=lang)
    for who in (creator, backer):
        await top_up(client, who, 200_000)
    rejected = await propose(client, creator, streamer, title="거절될 <i>미션</i>")
    won = await propose(client, backer, streamer, title="성공한 미션")
    lost = await propose(client, creator, streamer, title="실패한 미션")
    running = await propose(client, creator, streamer, title="열린 미션")
    await _pledge(client, backer, rejected["id"], 10_000)
    await _call(client, backer, f"{won['id']}/bets", {"side": "success", "points": 50})
    await _call(client, creator, f"{won['id']}/bets", {"side": "failure", "points": 50})
    await _call(client, backer, f"{lost['id']}/bets", {"side": "success", "points": 30})
    await _call(client, creator, f"{lost['id']}/bets", {"side": "failure", "points": 30})
    for _ in range(11):  # two pages of pledges on My page
        await _pledge(client, backer, running["id"], 1_000)
    for m, outcome in ((won, "success"), (lost, "failure")):
        await _call(client, streamer, f"{m['id']}/accept")
        await _call(client, streamer, f"{m['id']}/result", {"outcome": outcome})
    await settle_all(container)
    app = create_app(container)

    # The streamer gives a reason with the reject; the page shows it, as text, live.
    async with browsing(app, lang, viewport, token=streamer.token) as browser:
        page = await browser.page(f"/missions/{rejected['id']}?lang={lang}")
        box = page.locator("#mission-card input[name=reject_reason]")
        await box.wait_for(timeout=TIMEOUT_MS)
        assert await box.get_attribute("maxlength") == "200"
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
        # A reason the server refuses: its message, in the page's language, next to it.
        await box.fill("종소리\u0007")
        await page.click("[data-op=reject]")
        note = page.locator("#mission-card .reject-reason-field .field-error")
        await note.wait_for(timeout=TIMEOUT_MS)
        assert await note.inner_text() == words["bad_reason"]
        assert await box.get_attribute("aria-invalid") == "true"
        assert await note.get_attribute("id") in (await box.get_attribute("aria-describedby"))
        assert await page.locator("#mission-card[data-status=pending]").count() == 1
        refused = "the server responded with a status of 422"
        assert [e for e in browser.errors if refused in e], browser.errors
        browser.errors[:] = [e for e in browser.errors if refused not in e]
        await box.fill(f"  {REASON}  ")
        await page.click("[data-op=reject]")
        await _text(page, "#mission-card .reject-reason", words["reason"])
        shown = page.locator("#mission-card .reject-reason-text")
        assert await shown.text_content() == REASON
        assert await page.locator("#mission-card .reject-reason b").count() == 0
        await _fits(page, viewport["width"])
        assert browser.documents == [f"/missions/{rejected['id']}?lang={lang}"]
    got = (await client.get(f"/api/v1/missions/{rejected['id']}")).json()
    assert got["reject_reason"] == REASON
    await settle_all(container)

    async with browsing(app, lang, viewport, token=backer.token) as browser:
        # A backer reads it on the mission page ...
        page = await browser.page(f"/missions/{rejected['id']}?lang={lang}")
        await _text(page, "#mission-card .reject-reason", REASON)
        # ... and finds My page from the header.
        await page.click(f"header a[href='/me']:has-text('{words['nav']}')")
        await page.wait_for_selector("body[data-ready]", state="attached", timeout=TIMEOUT_MS)
        await _text(page, "#my-results li", "거절될 <i>미션</i>")
        results = page.locator("#my-results li")
        texts = [await results.nth(i).inner_text() for i in range(await results.count())]
        assert len(texts) == 4, texts
        refund = next(x for x in texts if "거절될" in x)
        assert words["refunded"] in refund and words["result_reason"] + REASON in refund
        assert any(words["won"] in x and "성공한 미션" in x for x in texts), texts
        assert any(words["lost"] in x and "실패한 미션" in x for x in texts), texts
        assert any(words["paid_out"] in x and "성공한 미션" in x for x in texts), texts
        assert await page.locator("#my-results i, #my-results b").count() == 0

        pledges = page.locator("#my-pledges tbody tr")
        assert await pledges.count() == 10
        assert await page.locator("#my-pledges tbody tr[data-outcome=open]").count() == 10
        await page.click("#my-pledges [data-action=my-older]")
        await _text(page, "#my-pledges tbody tr", words["refunded"])
        assert await pledges.count() == 3
        await page.click("#my-pledges [data-action=my-newer]")
        await page.locator("#my-pledges tbody tr", has_text=words["refunded"]).wait_for(
            state="detached", timeout=TIMEOUT_MS)
        assert await pledges.count() == 10
        await _text(page, "#my-bets tbody tr[data-outcome=won]", words["won"])
        await _text(page, "#my-bets tbody tr[data-outcome=lost]", "실패한 미션")
        await _text(page, "#my-missions tbody tr[data-outcome=paid_out]", words["paid_out"])
        assert await page.locator("#my-missions tbody tr").count() == 1
        await _fits(page, viewport["width"])
        name = f"my-page-{lang}-{viewport['width']}.png"
        await page.screenshot(path=str(screenshot_path(name, tmp_path)), full_page=True)


async def test_my_page_asks_a_visitor_to_log_in(
    client: httpx.AsyncClient, container: Container
) -> None:
    async with browsing(create_app(container), "ko", PHONE) as browser:
        page = await browser.page("/me")
        await _text(page, "main .notice", "로그인이 필요합니다")
        assert await page.locator("#my-page").is_hidden()
        assert await page.locator("header a[href='/me']").is_hidden()
