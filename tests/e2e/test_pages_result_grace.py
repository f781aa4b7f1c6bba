"""The mission and studio pages show every mission time apart (accept by, pledges close,
result by), explain the grace period for the result, and offer the result buttons only
until ``result_by``, in Korean and in English."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from tests.e2e.sse import live_server
from tests.helpers import Actor, make_user, propose, top_up

DURATION = 600


async def _page(client: httpx.AsyncClient, path: str) -> str:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return r.text


async def _accepted(client: httpx.AsyncClient, container: Container
                    ) -> tuple[Actor, dict[str, Any]]:
    streamer, fan = await make_user(container, "streamer"), await make_user(container)
    await top_up(client, fan, 20_000)
    m = await propose(client, fan, streamer, duration=DURATION)
    r = await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    return streamer, r.json()


async def test_a_pending_mission_shows_each_time_under_its_own_name(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer, fan = await make_user(container, "streamer"), await make_user(container)
    await top_up(client, fan, 20_000)
    m = await propose(client, fan, streamer, duration=DURATION)  # accept_by = deadline
    html = await _page(client, f"/missions/{m['id']}")
    for label in ("수락 기한", "후원 마감", "결과 선언 기한"):
        assert f"<dt>{label}</dt>" in html, label
    assert "후원 마감과 같은 시각" in html
    assert f'datetime="{m["result_by"]}"' in html
    assert "10분 동안(결과 선언 기한까지)" in html
    english = await _page(client, f"/missions/{m['id']}?lang=en")
    for label in ("Accept by", "Pledges close", "Result by"):
        assert f"<dt>{label}</dt>" in english, label
    assert "for 10 min (until the result deadline)" in english


async def test_in_the_grace_period_the_result_buttons_stay_until_result_by(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer, m = await _accepted(client, container)
    html = await _page(client, f"/missions/{m['id']}")
    assert 'data-form="pledge"' in html
    assert f'data-until="{m["result_by"]}"' in html and 'data-op="success"' in html
    clock.advance(DURATION + 1)
    html = await _page(client, f"/missions/{m['id']}")
    assert 'data-form="pledge"' not in html and 'data-form="bet"' not in html
    assert 'data-op="success"' in html and 'data-op="failure"' in html
    assert f'data-until="{m["result_by"]}"' in html
    assert f'data-ends="{m["result_by"]}"' in html and "결과 선언 기한까지" in html
    assert "스트리머의 결과 선언을 기다리는 중입니다" in html
    english = await _page(client, f"/missions/{m['id']}?lang=en")
    assert "Waiting for the streamer to declare the result" in english
    assert "Result due in" in english
    studio = await _page(client, f"/channels/{streamer.id}/open-missions")
    assert 'data-op="success"' in studio and f'data-until="{m["result_by"]}"' in studio
    clock.advance(container.settings.result_grace_seconds)
    html = await _page(client, f"/missions/{m['id']}")
    assert 'data-op="success"' not in html and 'data-op="failure"' not in html
    studio = await _page(client, f"/channels/{streamer.id}/open-missions")
    assert 'data-op="success"' not in studio


async def test_the_studio_explains_the_mission_times(
    client: httpx.AsyncClient, container: Container
) -> None:
    html = await _page(client, "/studio")
    for label in ("수락 기한", "후원 마감", "결과 선언 기한"):
        assert f"<dt>{label}</dt>" in html, label
    assert "10분 동안(결과 선언 기한까지)" in html
    english = await _page(client, "/studio?lang=en")
    assert "Declare an accepted mission" in english and "for 10 min" in english


# -- in a real browser: the buttons go away at result_by without a reload ------------------

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 15_000


def _session(actor: Actor) -> str:
    """An init script that puts ``actor``'s access token where app.js keeps it."""
    token = actor.headers["Authorization"].removeprefix("Bearer ")
    value = json.dumps({"token": token, "exp": int((time.time() + 600) * 1000)})
    return f"sessionStorage.setItem('missionlink-access', {json.dumps(value)});"


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing")
@pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("lang", "viewport", "closed"), [
    ("ko", {"width": 1280, "height": 800}, "결과 선언 기한이 지났습니다"),
    ("en", {"width": 390, "height": 844}, "The result deadline has passed"),
])
async def test_the_result_buttons_close_at_result_by_in_the_browser(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock,
    lang: str, viewport: dict[str, int], closed: str,
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    streamer, m = await _accepted(client, container)
    clock.advance(DURATION + container.settings.result_grace_seconds - 3)
    errors: list[str] = []
    async with live_server(create_app(container)) as base, playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM),
                                          args=["--no-sandbox", "--disable-gpu"])
        try:
            context = await browser.new_context(viewport=viewport, locale="ko-KR",
                                                timezone_id="Asia/Seoul")
            await context.add_init_script(_session(streamer))
            page = await context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{base}/missions/{m['id']}?lang={lang}")
            await page.wait_for_selector("body[data-ready]", state="attached",
                                         timeout=TIMEOUT_MS)
            success = page.locator("#mission-main button[data-op=success]")
            await success.wait_for(state="visible", timeout=TIMEOUT_MS)
            assert await page.locator("form[data-form=pledge]").count() == 0
            await success.wait_for(state="hidden", timeout=TIMEOUT_MS)
            assert await success.is_disabled()
            await page.locator("#mission-main", has_text=closed).wait_for(timeout=TIMEOUT_MS)
        finally:
            await browser.close()
    assert not errors, errors
