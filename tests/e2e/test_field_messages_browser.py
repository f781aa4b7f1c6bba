"""Field messages, checks before sending and context kept, in a real browser (headless
Chromium via Playwright) at desktop and phone size, in Korean and English.

Each invalid field shows its message next to it in the page's language, all at once, with
aria-invalid and aria-describedby; forms refuse what the API would refuse before sending
(bounds read from the page the server rendered); the API's own field codes (here a
reserved email domain) show the same way. "Log in to pledge" comes back to the mission; "not
enough balance" shows the balance with a top-up link that comes back; a success toast goes
when an error shows. Skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.sse import live_server
from tests.helpers import make_user, propose, top_up

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 10_000
PASSWORD = "correct horse battery"

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]

SIZES = [(1280, 800), (390, 844)]
WORDS = {
    "ko": {"email": "올바른 이메일 주소를 입력하세요", "password": "10자 이상 입력하세요",
           "name": "필수 항목입니다", "reserved": "메일을 받을 수 없는 도메인입니다 (.example)",
           "range": "1,000원~1,000,000원 사이로 입력하세요", "login": "로그인하고 후원하기",
           "done": "후원했습니다", "funds": "잔액이 부족합니다", "balance": "현재 잔액: 0원",
           "topup": "충전하기", "back": "원래 페이지로 돌아가기",
           "duration": "1분~168시간 사이로 입력하세요"},
    "en": {"email": "Enter a valid email address", "password": "Enter at least 10 characters",
           "name": "This field is required",
           "reserved": "This domain cannot receive email (.example)",
           "range": "Enter a value from 1,000 KRW to 1,000,000 KRW", "login": "Log in to pledge",
           "done": "You pledged", "funds": "Not enough balance", "balance": "Current balance: 0 KRW",
           "topup": "Top up", "back": "Back to where you were",
           "duration": "Enter a value from 1 min to 168 h"},
}


async def _ready(page: Any, url: str) -> None:
    await page.goto(url)
    await page.wait_for_selector("body[data-ready]", state="attached", timeout=TIMEOUT_MS)


async def _field_note(page: Any, selector: str, text: str) -> None:
    """The input is marked invalid and described by a visible note with ``text``."""
    field = page.locator(selector)
    assert await field.get_attribute("aria-invalid") == "true", selector
    described = (await field.get_attribute("aria-describedby") or "").split()
    assert described, selector
    note = page.locator(f"#{described[-1]}")
    await note.wait_for(state="visible", timeout=TIMEOUT_MS)
    assert text in await note.inner_text(), (selector, await note.inner_text(), text)


async def test_field_messages_checks_and_context_in_both_languages_and_sizes(
    client: httpx.AsyncClient, container: Container, tmp_path: Path
) -> None:
    streamer = await make_user(container, "streamer", name="라면왕")
    creator = await make_user(container)
    await top_up(client, creator, 50_000)
    mission = await propose(client, creator, streamer, amount=10_000, duration=86_400)
    mid = mission["id"]
    errors: list[str] = []
    sent: list[str] = []
    async with live_server(create_app(container)) as base, playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            n = 0
            for lang in ("ko", "en"):
                for width, height in SIZES:
                    n += 1
                    w = WORDS[lang]
                    context = await browser.new_context(
                        viewport={"width": width, "height": height},
                        locale="ko-KR" if lang == "ko" else "en-GB", timezone_id="Asia/Seoul")
                    context.on("page", lambda pg: (
                        pg.on("console", lambda m: errors.append(m.text)
                              if m.type == "error" and "422" not in m.text
                              and "409" not in m.text else None),
                        pg.on("pageerror", lambda e: errors.append(str(e)))))
                    context.on("request", lambda r: sent.append(r.url.removeprefix(base))
                               if r.method in ("POST", "PATCH") else None)
                    page = await context.new_page()

                    # Signup: three invalid fields, refused before sending, all at once.
                    sent.clear()
                    await _ready(page, f"{base}/signup?lang={lang}")
                    await page.fill("input[name=email]", "not-an-email")
                    await page.fill("input[name=password]", "short")
                    await page.click("form[data-form=signup] button[type=submit]")
                    await _field_note(page, "input[name=email]", w["email"])
                    await _field_note(page, "input[name=password]", w["password"])
                    await _field_note(page, "input[name=display_name]", w["name"])
                    assert await page.locator(".field-error").count() == 3
                    assert sent == [], sent
                    # Typing in a field clears its mark only.
                    await page.fill("input[name=password]", PASSWORD)
                    assert await page.get_attribute("input[name=password]",
                                                    "aria-invalid") is None
                    assert await page.locator(".field-error").count() == 2

                    # What only the server knows comes back as a code, shown the same way.
                    await page.fill("input[name=email]", f"fan{n}@site.example")
                    await page.fill("input[name=display_name]", f"팬{n}")
                    await page.click("form[data-form=signup] button[type=submit]")
                    await page.locator(".field-error", has_text=w["reserved"]).wait_for(
                        timeout=TIMEOUT_MS)
                    await _field_note(page, "input[name=email]", w["reserved"])
                    assert "reserved" not in await page.inner_text("main")  # no English detail
                    assert sent == ["/api/v1/auth/signup"], sent

                    # "Log in to pledge" goes to the login page and comes back (via signup).
                    await _ready(page, f"{base}/missions/{mid}")
                    link = page.locator("a", has_text=w["login"])
                    await link.click()
                    await page.wait_for_url(
                        f"{base}/login?next={quote(f'/missions/{mid}', safe='')}",
                        timeout=TIMEOUT_MS)
                    await page.wait_for_selector("body[data-ready]", state="attached")
                    await page.click("form[data-form=login] ~ p a[href^='/signup']")
                    await page.wait_for_selector("body[data-ready]", state="attached")
                    await page.fill("input[name=email]", f"fan{n}@example.com")
                    await page.fill("input[name=password]", PASSWORD)
                    await page.fill("input[name=display_name]", f"팬{n}")
                    await page.click("form[data-form=signup] button[type=submit]")
                    await page.wait_for_url(f"{base}/missions/{mid}", timeout=TIMEOUT_MS)
                    await page.wait_for_selector("body[data-ready]", state="attached")

                    # The pledge form checks the bounds the page was rendered with.
                    form = page.locator("form[data-form=pledge]")
                    await form.wait_for(timeout=TIMEOUT_MS)
                    sent.clear()
                    await form.locator("input[name=amount]").fill("999")
                    await form.locator("button[type=submit]").click()
                    await _field_note(page, "form[data-form=pledge] input[name=amount]",
                                      w["range"])
                    assert sent == [], sent

                    # Not enough balance: the balance and a top-up link that comes back.
                    await form.locator("input[name=amount]").fill("1000")
                    await form.locator("button[type=submit]").click()
                    box = form.locator(".form-error")
                    await box.locator(".funds").wait_for(timeout=TIMEOUT_MS)
                    assert w["funds"] in await box.inner_text()
                    assert w["balance"] in await box.inner_text()
                    topup = box.locator("a", has_text=w["topup"])
                    assert await topup.get_attribute("href") == (
                        f"/wallet?next={quote(f'/missions/{mid}', safe='')}")
                    await topup.click()
                    await page.wait_for_url(f"{base}/wallet?next=*", timeout=TIMEOUT_MS)
                    await page.wait_for_selector("body[data-ready]", state="attached")
                    await page.fill("form[data-form=topup] input[name=amount]", "1000")
                    await page.click("form[data-form=topup] button[type=submit]")
                    back = page.locator("#toast a", has_text=w["back"])
                    await back.wait_for(timeout=TIMEOUT_MS)
                    await back.click()
                    await page.wait_for_url(f"{base}/missions/{mid}", timeout=TIMEOUT_MS)
                    await page.wait_for_selector("body[data-ready]", state="attached")

                    # A success toast, then an error: the toast goes.
                    form = page.locator("form[data-form=pledge]")
                    await form.locator("input[name=amount]").fill("1000")
                    await form.locator("button[type=submit]").click()
                    await page.locator("#toast", has_text=w["done"]).wait_for(
                        timeout=TIMEOUT_MS)
                    await form.locator("input[name=amount]").fill("1000")
                    await form.locator("button[type=submit]").click()
                    await form.locator(".form-error .funds").wait_for(timeout=TIMEOUT_MS)
                    assert await page.locator("#toast").is_hidden()

                    # A proposal's duration is checked in seconds against the server's range.
                    await _ready(page, f"{base}/channels/{streamer.id}")
                    form = page.locator("form[data-form=propose]")
                    await form.locator("input[name=title]").fill("x")
                    await form.locator("input[name=duration]").fill("8")
                    await form.locator("select[name=duration_unit]").select_option("86400")
                    sent.clear()
                    await form.locator("button[type=submit]").click()
                    await _field_note(page, "form[data-form=propose] input[name=duration]",
                                      w["duration"])
                    assert sent == [], sent
                    await page.screenshot(path=str(tmp_path / f"fields-{lang}-{width}.png"))
                    await context.close()
        finally:
            await browser.close()
    assert not errors, errors


async def test_the_header_keeps_to_two_rows_on_a_phone(
    client: httpx.AsyncClient, container: Container,
) -> None:
    name = "매운라면먹방스트리머최고"
    r = await client.post("/api/v1/auth/signup", json={
        "email": "longname@example.com", "password": PASSWORD, "display_name": name,
        "role": "streamer"})
    assert r.status_code == 201, r.text
    async with live_server(create_app(container)) as base, playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844})
            page = await context.new_page()
            await _ready(page, f"{base}/login")
            await page.fill("input[name=email]", "longname@example.com")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form[data-form=login] button[type=submit]")
            await page.wait_for_url(f"{base}/", timeout=TIMEOUT_MS)
            for lang in ("ko", "en"):
                await _ready(page, f"{base}/wallet?lang={lang}")
                await page.locator("a[href='/studio']").wait_for(timeout=TIMEOUT_MS)
                # Rows: the items' vertical centres, a new row wherever two sorted centres
                # are more than 12 px apart.
                rows = await page.evaluate("""() => {
                  const mids = [...document.querySelectorAll(
                    '.header-row > .brand, .header-row > .main-nav > a:not([hidden]),'
                    + ' .header-row > .account > :not([hidden])')]
                    .map((el) => { const b = el.getBoundingClientRect(); return b.top + b.height / 2; })
                    .sort((a, b) => a - b);
                  return 1 + mids.slice(1).filter((m, i) => m - mids[i] > 12).length;
                }""")
                assert rows == 2, (lang, rows)
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth > window.innerWidth")
                assert not overflow, lang
        finally:
            await browser.close()
