"""The operations page in headless Chromium (Debian's ``chromium``) via Playwright.

An admin opens /admin/operations over a service with money in escrow, a dead event and
two result emails the mail server refused: the page shows them, refreshes by itself when
a new pledge lands, and a replay button queues a dead letter again and keeps the keyboard
on the page. A viewer gets the admins-only notice. Saves a screenshot (to
docs/images/operations.png with MISSIONLINK_UPDATE_SCREENSHOTS=1). Skipped when Playwright
or /usr/bin/chromium is missing.
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
from missionlink.services.reconcile import check_measured
from missionlink.workers import handlers
from missionlink.workers.runner import Worker
from tests.e2e.sse import live_server
from tests.fakes import MemoryMailer
from tests.helpers import Actor, make_user, propose, screenshot_path, top_up

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 15_000

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"worker_max_attempts": 1, "proposal_cooldown_seconds": 0}


async def _pledge(client: httpx.AsyncClient, fan: Actor, mission_id: int, amount: int) -> None:
    r = await client.post(f"/api/v1/missions/{mission_id}/pledges", headers=fan.headers,
                          json={"amount": amount})
    assert r.status_code == 201, r.text


async def _troubled_service(client: httpx.AsyncClient, container: Container,
                            mailer: MemoryMailer, monkeypatch: pytest.MonkeyPatch) -> int:
    """Open missions with pledges, two refused result emails and a dead event."""
    streamer = await make_user(container, "streamer", name="라면왕")
    fans = [await make_user(container, name=n) for n in ("열혈팬", "구독자")]
    for fan in fans:
        await top_up(client, fan, 300_000)
    refused = await propose(client, fans[0], streamer, amount=20_000, title="매운 라면 10봉")
    await client.post(f"/api/v1/missions/{refused['id']}/reject", headers=streamer.headers)
    mailer.fail_next = 1_000
    await Worker(container).run_until_idle()  # settled; both result emails refused
    mailer.fail_next = 0

    async def broken(*_: Any) -> None:
        raise RuntimeError("settlement: payment provider timed out")

    monkeypatch.setitem(handlers.HANDLERS, "mission.ended", [("settlement", broken)])
    stuck = await propose(client, fans[1], streamer, amount=15_000, title="노래 한 곡")
    await client.post(f"/api/v1/missions/{stuck['id']}/cancel", headers=fans[1].headers)
    await Worker(container).run_until_idle()
    monkeypatch.undo()
    live = await propose(client, fans[0], streamer, amount=50_000, title="24시간 방송")
    await client.post(f"/api/v1/missions/{live['id']}/accept", headers=streamer.headers)
    await _pledge(client, fans[1], int(live["id"]), 30_000)
    await propose(client, fans[1], streamer, amount=10_000, title="춤 추기")
    await Worker(container).run_until_idle()
    async with container.core_db.read() as conn:
        assert (await check_measured(conn)).ok
    return int(live["id"])


def _session(actor: Actor) -> str:
    """An init script that puts ``actor``'s access token where app.js keeps it."""
    token = actor.headers["Authorization"].removeprefix("Bearer ")
    value = json.dumps({"token": token, "exp": int((time.time() + 600) * 1000)})
    return f"sessionStorage.setItem('missionlink-access', {json.dumps(value)});"


async def test_an_admin_watches_the_service_and_replays_a_dead_letter(
    client: httpx.AsyncClient, container: Container, mailer: MemoryMailer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live_id = await _troubled_service(client, container, mailer, monkeypatch)
    admin = await make_user(container, "admin", name="운영자")
    viewer = await make_user(container, name="구경꾼")
    errors: list[str] = []
    async with live_server(create_app(container)) as base, playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 1180},
                                                locale="ko-KR", timezone_id="Asia/Seoul")
            await context.add_init_script(_session(admin))
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(base + "/admin/operations")
            await page.wait_for_selector("body[data-ready]", state="attached",
                                         timeout=TIMEOUT_MS)
            board = page.locator("#ops-board")
            await board.wait_for(timeout=TIMEOUT_MS)
            await page.locator("#ops-escrow", has_text="105,000원").wait_for(timeout=TIMEOUT_MS)
            assert await page.inner_text("#ops-open") == "2"
            assert await page.inner_text("#ops-unsettled") == "1"
            assert await page.inner_text("#ops-emails-failed") == "2"
            assert await page.inner_text("#ops-reconcile-result") == "정상"
            assert "이 API 프로세스의 수치입니다" in await page.inner_text("#ops-requests-note")
            rows = page.locator("#ops-dead tbody tr")
            assert await rows.count() == 3
            assert "payment provider timed out" in await rows.first.inner_text()
            assert await rows.first.locator("a[href^='/missions/']").count() == 1
            assert await page.inner_text("#ops-dead-count") == "3"
            assert await page.locator("a[href='/admin/operations']").is_visible()
            await page.locator("#ops-updated", has_text="5초마다").wait_for()
            # Every replay button says which dead letter it replays.
            labels = await page.eval_on_selector_all(
                "#ops-dead button", "bs => bs.map(b => b.getAttribute('aria-label'))")
            assert all(label and label.endswith(" 재처리") for label in labels), labels
            await page.wait_for_timeout(300)
            await page.screenshot(path=str(screenshot_path("operations.png", tmp_path)),
                                  full_page=True)

            # A new pledge shows up by itself at the next refresh.
            await top_up(client, viewer, 10_000)
            await _pledge(client, viewer, live_id, 5_000)
            await page.locator("#ops-escrow", has_text="110,000원").wait_for(timeout=TIMEOUT_MS)

            # Replay the dead event from the keyboard: it leaves the list, focus stays put.
            event = page.locator("#ops-dead button[data-id^='event:']")
            await event.focus()
            await page.keyboard.press("Enter")
            await page.locator("#toast", has_text="다시 대기열에 넣었습니다").wait_for(
                timeout=TIMEOUT_MS)
            await page.locator("#ops-dead-count", has_text="2").wait_for(timeout=TIMEOUT_MS)
            assert await rows.count() == 2
            assert await page.evaluate("document.activeElement.id") == "ops-dead-h"

            # Pausing stops the refreshes, and says so.
            await page.click("[data-action=ops-pause]")
            await page.locator("[data-action=ops-pause][aria-pressed=true]").wait_for()
            await page.locator("#ops-updated", has_text="멈춤").wait_for()

            # English, and a viewer who finds the address gets the notice, not the figures.
            await page.goto(base + "/admin/operations?lang=en")
            await page.locator("#ops-dead-h", has_text="Dead letters").wait_for(
                timeout=TIMEOUT_MS)
            other = await browser.new_context(locale="ko-KR")
            await other.add_init_script(_session(viewer))
            seen = await other.new_page()
            await seen.goto(base + "/admin/operations")
            await seen.wait_for_selector("body[data-ready]", state="attached",
                                         timeout=TIMEOUT_MS)
            assert await seen.locator("text=관리자만 볼 수 있는 페이지입니다.").is_visible()
            assert await seen.locator("#ops-board").is_hidden()
            await other.close()
        finally:
            await browser.close()
    assert not errors, errors
