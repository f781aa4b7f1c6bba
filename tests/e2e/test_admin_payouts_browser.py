"""The admin's payouts page (/admin/payouts) in a real browser: an admin sees a streamer's
requested withdrawals, exports them as a bank transfer batch (a double click makes one
batch) and downloads its file, is told plainly when there is nothing left to export,
marks one line paid and another failed with a reason (required, with its field message),
and filters the list by state; the streamer's own payouts follow, reconcile stays clean,
and a viewer who finds the address gets the admins-only notice. Axe finds no serious or
critical violation on the page with its forms and a field error shown. Headless Chromium
via Playwright, Korean on a phone and English on a desktop (``browser_matrix``). Skipped
when Playwright or Chromium is missing."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.api.problems import TYPE_BASE
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.e2e.a11y import blocking_violations
from tests.e2e.test_pages_live_browser import CHROMIUM, TIMEOUT_MS, _ids, _text, browsing
from tests.e2e.test_payouts import ACCOUNT, PAYOUT_SETTINGS, _earn, _withdraw
from tests.helpers import assert_ledger_ok, browser_matrix, make_user

WORDS = {
    "ko": {"won": "원", "requested": "신청됨", "exported": "이체 처리 중",
           "failed": "실패(환급됨)", "batch": "배치 #", "nothing": "이체할 출금 신청이 없습니다",
           "changed": "출금 내역이 바뀌었습니다",
           "required": "필수 항목입니다", "paid_toast": "입금 완료로 표시했습니다",
           "admins_only": "관리자만 볼 수 있는 페이지입니다.", "reason": "계좌 해지됨"},
    "en": {"won": " KRW", "requested": "Requested", "exported": "Sent to the bank",
           "failed": "Failed (returned)", "batch": "Batch #",
           "nothing": "There are no requested withdrawals to export",
           "changed": "The withdrawals changed",
           "required": "This field is required", "paid_toast": "marked paid",
           "admins_only": "Only admins can see this page.", "reason": "account closed"},
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
async def test_an_admin_exports_a_batch_and_marks_lines_paid_and_failed(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, lang: str,
    viewport: dict[str, int],
) -> None:
    words = WORDS[lang]
    streamer = await make_user(container, "streamer", name="라면왕", language=lang)
    admin = await make_user(container, "admin", name="운영자", language=lang)
    viewer = await make_user(container, name="구경꾼", language=lang)
    await _earn(client, container, streamer, 100_000)
    r = await client.put("/api/v1/me/payout-account", json=ACCOUNT, headers=streamer.headers)
    assert r.status_code == 200, r.text
    clock.advance(8 * 86_400)
    to_pay = (await _withdraw(client, streamer, 50_000, "p-1")).json()
    to_fail = (await _withdraw(client, streamer, 20_000, "p-2")).json()
    assert (to_pay["net"], to_fail["net"]) == (48_350, 19_340)

    async with browsing(create_app(container), lang, viewport, token=admin.token) as browser:
        page = await browser.page(f"/admin/payouts?lang={lang}")
        paid_row = page.locator(f"#admin-withdrawals tr[data-withdrawal='{to_pay['id']}']")
        failed_row = page.locator(f"#admin-withdrawals tr[data-withdrawal='{to_fail['id']}']")
        await _text(page, "#admin-withdrawals tbody tr[data-state=requested]", words["requested"])
        row_text = await paid_row.inner_text()
        assert "라면왕" in row_text and f"48,350{words['won']}" in row_text, row_text
        assert f"1,650{words['won']}" in row_text and f"50,000{words['won']}" in row_text
        assert await page.locator("nav a[href='/admin/payouts']").count() == 1

        # The API refuses (another admin's export took the lines meanwhile): the page says
        # so in its own language, never the API's English detail.
        async def refuse(route: Any) -> None:
            await route.fulfill(status=409, content_type="application/problem+json",
                                body=json.dumps({
                                    "type": TYPE_BASE + "withdrawal-state",
                                    "title": "Conflict", "status": 409,
                                    "detail": "withdrawals changed while exporting"}))

        await page.route("**/api/v1/admin/payout-batches", refuse)
        await page.locator("[data-action=payout-export]").click()
        await _text(page, "#batch-result", words["changed"])
        assert "exporting" not in await page.locator("main").inner_text()
        await page.unroute("**/api/v1/admin/payout-batches")
        browser.errors.clear()  # the refused request's console line

        # One batch for a double click; its transfer file comes with the admin's token.
        await page.locator("[data-action=payout-export]").dblclick()
        await _text(page, "#batch-result", words["batch"])
        await _text(page, "#admin-withdrawals tbody tr[data-state=exported]", words["exported"])
        async with page.expect_download(timeout=TIMEOUT_MS) as info:
            await page.locator("#batch-result [data-action=batch-csv]").click()
        download = await info.value
        text = Path(await download.path()).read_text("utf-8")
        assert download.suggested_filename.startswith("payout-batch-")
        assert "48350" in text and "19340" in text and "110123456789" in text, text
        batches = {w["batch_id"] for w in (await client.get(
            "/api/v1/admin/withdrawals", headers=admin.headers)).json()["items"]}
        assert len(batches) == 1 and None not in batches, batches

        # Nothing left to export: said so, in the page's language.
        await page.locator("[data-action=payout-export]").click()
        await _text(page, "#batch-result", words["nothing"])

        # A failed line needs its reason: the field says so before anything is sent.
        await failed_row.locator("button[type=submit]").click()
        await _text(page, f"tr[data-withdrawal='{to_fail['id']}'] .field-error",
                    words["required"])
        assert await failed_row.locator("input[name=reason]").get_attribute(
            "aria-invalid") == "true"
        assert await blocking_violations(page) == []
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], width

        page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
        await paid_row.locator("[data-action=withdrawal-paid]").click()
        await page.locator(f"tr[data-withdrawal='{to_pay['id']}'][data-state=paid]").wait_for(
            timeout=TIMEOUT_MS)
        await _text(page, "#toast", words["paid_toast"])
        await failed_row.locator("input[name=reason]").fill(words["reason"])
        await failed_row.locator("button[type=submit]").click()
        done = page.locator(f"tr[data-withdrawal='{to_fail['id']}'][data-state=failed]")
        await done.wait_for(timeout=TIMEOUT_MS)
        assert words["reason"] in await done.inner_text()
        assert words["failed"] in await done.inner_text()

        await page.locator("#payout-filter").select_option("failed")
        await page.locator("#admin-withdrawals tbody tr[data-state=paid]").wait_for(
            state="detached", timeout=TIMEOUT_MS)
        assert await page.locator("#admin-withdrawals tbody tr").count() == 1
        assert await page.locator("#admin-withdrawals tbody tr[data-state=failed]").count() == 1

        # A viewer who finds the address gets the notice, not the list.
        other = await browser.context.browser.new_context(viewport=viewport)
        saved = json.dumps({"token": viewer.token, "exp": (time.time() + 600) * 1000})
        await other.add_init_script(
            f"sessionStorage.setItem('missionlink-access', {json.dumps(saved)})")
        seen = await other.new_page()
        await seen.goto(f"{browser.base}/admin/payouts?lang={lang}")
        await seen.wait_for_selector("body[data-ready]", state="attached", timeout=TIMEOUT_MS)
        assert await seen.locator(f"text={words['admins_only']}").is_visible()
        assert await seen.locator("#payouts-admin").is_hidden()
        await other.close()

    mine = (await client.get("/api/v1/me/withdrawals", headers=streamer.headers)).json()
    assert [(w["id"], w["state"], w["failure_reason"]) for w in mine["items"]] == [
        (to_fail["id"], "failed", words["reason"]), (to_pay["id"], "paid", None)]
    summary = (await client.get("/api/v1/me/payouts", headers=streamer.headers)).json()
    assert (summary["requested"], summary["paid"], summary["withdrawable"]) == (
        0, 50_000, 40_000)
    await assert_ledger_ok(container)
