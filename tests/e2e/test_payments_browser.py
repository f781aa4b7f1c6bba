"""The wallet page with a real provider, in headless Chromium: the provider's browser SDK
is loaded (and allowed by the page's Content-Security-Policy), the payer pays in its
widget, and the page has the server confirm the payment with the provider.

The providers' browser SDKs come from their CDNs, which this machine cannot reach: the
browser is served a stand-in of each SDK's entry point at the real address (PortOne's
``requestPayment``, Stripe's ``elements``/``confirmPayment``), and the test pays in the
local fake of the provider's API, as the real widget would. Skipped when Playwright or
/usr/bin/chromium is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.sse import live_server
from tests.payments import fakes as F

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 10_000

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]

PORTONE_SDK = """
window.PortOne = { requestPayment(request) {
  window.__request = request;
  return new Promise((resolve) => { window.__finish = resolve; });
} };
"""
STRIPE_SDK = """
window.Stripe = (key) => ({
  elements(options) {
    window.__request = { key, clientSecret: options.clientSecret };
    return { create() { return { mount(el) { el.textContent = 'card form'; }, destroy() {} }; } };
  },
  confirmPayment() { return new Promise((resolve) => { window.__finish = resolve; }); },
});
"""


@pytest.fixture(scope="module")
def fakes() -> Iterator[F.Fakes]:
    with F.serve() as running:
        yield running


@pytest.fixture(params=["portone", "stripe"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides(provider: str, fakes: F.Fakes) -> dict[str, object]:
    if provider == "portone":
        return {"payment_provider": "portone", "portone_api_base_url": fakes.base_url,
                "portone_api_secret": F.PORTONE_SECRET,
                "portone_webhook_secret": F.PORTONE_WEBHOOK_SECRET,
                "portone_store_id": F.PORTONE_STORE, "portone_channel_key": "channel-key-test"}
    return {"payment_provider": "stripe", "stripe_api_base_url": fakes.base_url,
            "stripe_secret_key": F.STRIPE_SECRET, "stripe_publishable_key": "pk_test_ml",
            "stripe_webhook_secret": F.STRIPE_WEBHOOK_SECRET}


async def _pay(page: Any, provider: str, amount: int, method: str | None = None) -> str:
    """Submit a top-up and wait for the widget; the provider's payment id."""
    await page.fill("form[data-form=topup] input[name=amount]", str(amount))
    if method:
        await page.select_option("form[data-form=topup] select[name=pay_method]", method)
    await page.click("form[data-form=topup] button[type=submit]")
    if provider == "stripe":
        await page.locator("#provider-pay", has_text="card form").wait_for(timeout=TIMEOUT_MS)
        await page.click("#provider-pay [data-pay]")
    # Polled (wait_for_function evaluates a string, which the page's CSP refuses).
    for _ in range(100):
        if await page.evaluate("typeof window.__finish === 'function'"):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the widget was never opened")
    request: dict[str, Any] = await page.evaluate("window.__request")
    if provider == "portone":
        assert request["storeId"] == F.PORTONE_STORE
        assert request["totalAmount"] == amount and request["currency"] == "KRW"
        assert request["payMethod"] == (method or "EASY_PAY")
        return str(request["paymentId"])
    assert request["key"] == "pk_test_ml"
    return str(request["clientSecret"]).split("_secret_")[0]


async def _finish(page: Any) -> None:
    await page.evaluate("window.__finish({}); window.__finish = undefined")


async def test_a_fan_tops_up_in_the_providers_widget(
    client: httpx.AsyncClient, container: Container, provider: str, fakes: F.Fakes,
) -> None:
    errors: list[str] = []
    async with live_server(create_app(container)) as base, playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM),
                                          args=["--no-sandbox", "--disable-gpu"])
        try:
            context = await browser.new_context(locale="ko-KR", timezone_id="Asia/Seoul")
            sdk_loads: list[str] = []

            async def serve_sdk(route: Any) -> None:
                sdk_loads.append(route.request.url)
                await route.fulfill(status=200, content_type="text/javascript",
                                    body=PORTONE_SDK if provider == "portone" else STRIPE_SDK)

            await context.route("https://cdn.portone.io/**", serve_sdk)
            await context.route("https://js.stripe.com/**", serve_sdk)
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            await page.goto(base + "/signup")
            await page.wait_for_selector("body[data-ready]", state="attached")
            await page.fill("input[name=email]", "payer@example.com")
            await page.fill("input[name=password]", "correct horse battery")
            await page.fill("input[name=display_name]", "결제왕")
            await page.click("form[data-form=signup] button[type=submit]")
            await page.wait_for_url(base + "/", timeout=TIMEOUT_MS)
            await page.goto(base + "/wallet")
            await page.wait_for_selector("body[data-ready]", state="attached")
            await page.locator("#topups-empty").wait_for(timeout=TIMEOUT_MS)
            assert sdk_loads, "the provider's SDK was not loaded"

            # Paid in the widget: the page has the server confirm it with the provider.
            pid = await _pay(page, provider, 20_000)
            (fakes.portone_pay if provider == "portone" else fakes.stripe_pay)(pid)
            await _finish(page)
            await page.locator("#cash-balance", has_text="20,000원").wait_for(timeout=TIMEOUT_MS)
            await page.locator("#topups tbody tr[data-status=completed]",
                               has_text="충전 완료").wait_for(timeout=TIMEOUT_MS)

            if provider == "portone":
                # A virtual account: waiting for the deposit, shown with where to send it.
                pid = await _pay(page, provider, 30_000, "VIRTUAL_ACCOUNT")
                fakes.portone_virtual_account(pid)
                await _finish(page)
                row = page.locator("#topups tbody tr[data-status=awaiting_deposit]")
                await row.wait_for(timeout=TIMEOUT_MS)
                assert "SHINHAN 56211234567890 미션링크" in await row.inner_text()
                # The deposit lands days later; only the webhook says so.
                fakes.portone_pay(pid)
                body, headers = F.portone_webhook("Transaction.Paid", pid)
                r = await client.post("/api/v1/payments/webhook/portone", content=body,
                                      headers=headers)
                assert r.json()["status"] == "completed"
                await page.reload()
                await page.locator("#cash-balance", has_text="50,000원").wait_for(
                    timeout=TIMEOUT_MS)
            else:
                # A declined card: nothing is credited, and the page says so.
                pid = await _pay(page, provider, 5_000)
                fakes.stripe_fail(pid)
                await _finish(page)
                await page.locator("#topups tbody tr[data-status=failed]",
                                   has_text="Your card was declined.").wait_for(
                    timeout=TIMEOUT_MS)
                assert "20,000원" in await page.inner_text("#cash-balance")
        finally:
            await browser.close()
    assert errors == []
