"""The fan board in a real browser: paging both ways stays at ``#board``; an author edits a
comment. Headless Chromium (Debian's ``chromium``) via Playwright at 1280x800 and 390x844,
in Korean and English. Skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from tests.e2e.sse import live_server
from tests.helpers import PHONE, Actor, browser_matrix, make_user

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 10_000
WORDS = {
    "ko": {"locale": "ko-KR", "older": "이전 항목", "newer": "최근 항목", "edit": "수정",
           "save": "저장", "edited": "수정됨", "saved": "댓글을 수정했습니다."},
    "en": {"locale": "en-US", "older": "Older", "newer": "Newer", "edit": "Edit",
           "save": "Save", "edited": "edited", "saved": "Comment updated."},
}

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing "
                       "(apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.parametrize("database_urls", ["sqlite"], indirect=True),
]
SIZES = browser_matrix()


def _ids(value: object) -> str:
    return f"{value['width']}x{value['height']}" if isinstance(value, dict) else str(value)


@contextlib.asynccontextmanager
async def browsing(app: FastAPI, lang: str, viewport: dict[str, int],
                   token: str | None = None) -> AsyncIterator[tuple[str, Any, list[str]]]:
    async with live_server(app) as base, playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            context = await chromium.new_context(viewport=viewport,
                                                 locale=WORDS[lang]["locale"],
                                                 timezone_id="Asia/Seoul")
            if token is not None:
                saved = json.dumps({"token": token, "exp": (time.time() + 600) * 1000})
                await context.add_init_script(
                    f"sessionStorage.setItem('missionlink-access', {json.dumps(saved)})")
            errors: list[str] = []
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield base, page, errors
        finally:
            await chromium.close()


async def _ready(page: Any) -> None:
    await page.wait_for_selector("body[data-ready]", state="attached", timeout=TIMEOUT_MS)


async def _board_in_view(page: Any) -> dict[str, float]:
    """Where the board's heading is on screen, and how far the page is scrolled."""
    await page.wait_for_function(
        "(() => { const r = document.getElementById('board-heading').getBoundingClientRect();"
        " return r.top >= 0 && r.top < innerHeight; })()", timeout=TIMEOUT_MS)
    spot: dict[str, float] = await page.evaluate(
        "({top: document.getElementById('board-heading').getBoundingClientRect().top,"
        " scrollY: window.scrollY})")
    return spot


async def _posts(client: httpx.AsyncClient, who: Actor, streamer: Actor, n: int) -> list[int]:
    ids = []
    for i in range(n):
        r = await client.post(f"/api/v1/channels/{streamer.id}/posts", headers=who.headers,
                              json={"title": f"글 {i:02d} post", "body": "본문"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


@pytest.mark.parametrize(("lang", "viewport"), SIZES, ids=_ids)
async def test_paging_the_board_both_ways_stays_at_the_board(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int]
) -> None:
    words = WORDS[lang]
    streamer = await make_user(container, "streamer", name="라면왕")
    fan = await make_user(container, name="열혈팬")
    await _posts(client, fan, streamer, 25)  # the page shows 20
    async with browsing(create_app(container), lang, viewport) as (base, page, errors):
        await page.goto(f"{base}/channels/{streamer.id}?lang={lang}")
        await _ready(page)
        titles = page.locator("#board .post-title")
        assert await titles.first.inner_text() == "글 24 post"
        assert await page.locator("#board .pager a[rel=prev]").count() == 0

        await page.locator("#board .pager a[rel=next]", has_text=words["older"]).click()
        await page.wait_for_url("**#board", timeout=TIMEOUT_MS)
        await _ready(page)
        assert await titles.first.inner_text() == "글 04 post"
        assert await titles.count() == 5
        spot = await _board_in_view(page)
        if viewport is PHONE:  # the board sits below the missions: not the top of the page
            assert spot["scrollY"] > 300, spot
        assert await page.evaluate("document.documentElement.lang") == lang
        assert await page.locator("#board .pager a[rel=next]").count() == 0

        await page.locator("#board .pager a[rel=prev]", has_text=words["newer"]).click()
        await page.wait_for_function("document.querySelector('#board .post-title')"
                                     ".textContent === '글 24 post'", timeout=TIMEOUT_MS)
        await _ready(page)
        assert page.url.endswith("#board")
        assert await titles.count() == 20
        spot = await _board_in_view(page)
        if viewport is PHONE:
            assert spot["scrollY"] > 300, spot
        assert await page.locator("#board .pager a[rel=prev]").count() == 0

        # A search keeps the reader at the board too, and finds a post by its comment.
        r = await client.post("/api/v1/posts/1/comments", headers=fan.headers,
                              json={"body": "짜장면 comment"})
        assert r.status_code == 201, r.text
        await page.fill("#board input[name=q]", "짜장면")
        await page.locator("#board form.search button").click()
        await page.wait_for_url("**q=*#board", timeout=TIMEOUT_MS)
        await _ready(page)
        assert [await t.inner_text() for t in await titles.all()] == ["글 00 post"]
        await _board_in_view(page)
        assert not errors, errors


@pytest.mark.parametrize(("lang", "viewport"), SIZES, ids=_ids)
async def test_the_author_edits_a_comment_on_the_page(
    client: httpx.AsyncClient, container: Container, lang: str, viewport: dict[str, int]
) -> None:
    words = WORDS[lang]
    streamer = await make_user(container, "streamer", name="라면왕")
    fan = await make_user(container, name="열혈팬")
    other = await make_user(container, name="지나가던팬")
    (post_id,) = await _posts(client, streamer, streamer, 1)
    comments = {}
    for who, body in ((fan, "오타가 잇는 댓글"), (other, "남의 댓글 <b>굵게</b>")):
        r = await client.post(f"/api/v1/posts/{post_id}/comments", headers=who.headers,
                              json={"body": body})
        assert r.status_code == 201, r.text
        comments[who.id] = r.json()["id"]
    token = fan.headers["Authorization"].removeprefix("Bearer ")
    async with browsing(create_app(container), lang, viewport, token=token) as (
            base, page, errors):
        await page.goto(f"{base}/posts/{post_id}?lang={lang}")
        await _ready(page)
        mine = page.locator(f"#comment-{comments[fan.id]}")
        theirs = page.locator(f"#comment-{comments[other.id]}")
        await mine.locator("details.edit-comment").wait_for(timeout=TIMEOUT_MS)
        assert await theirs.locator("details.edit-comment").is_hidden()
        assert await mine.locator(".comment-edited").count() == 0

        # Empty text is refused with a reason next to the form; nothing changes.
        await mine.locator("details.edit-comment summary", has_text=words["edit"]).click()
        box = mine.locator("textarea[name=body]")
        await box.fill("   ")
        await mine.locator("button[type=submit]", has_text=words["save"]).click()
        await mine.locator(".form-error").wait_for(timeout=TIMEOUT_MS)
        assert (await mine.locator(".form-error").inner_text()).strip()
        assert await mine.locator(".comment-body").inner_text() == "오타가 잇는 댓글"

        await box.fill("오타를 고친 댓글 <i>ok</i>")
        await mine.locator("button[type=submit]", has_text=words["save"]).click()
        await page.locator("#toast", has_text=words["saved"]).wait_for(timeout=TIMEOUT_MS)
        mine = page.locator(f"#comment-{comments[fan.id]}")
        await mine.locator(".comment-body", has_text="오타를 고친 댓글").wait_for()
        assert await mine.locator(".comment-body").inner_text() == "오타를 고친 댓글 <i>ok</i>"
        assert await mine.locator(".comment-edited").inner_text() == words["edited"]
        assert await page.locator(f"#comment-{comments[other.id]} .comment-edited").count() == 0
        r = await client.get(f"/api/v1/posts/{post_id}/comments")
        got = {c["id"]: c for c in r.json()["items"]}
        assert got[comments[fan.id]]["body"] == "오타를 고친 댓글 <i>ok</i>"
        assert got[comments[fan.id]]["edited_at"] is not None
        assert got[comments[other.id]]["edited_at"] is None
        # The form refuses blank text before sending (the same rule as the server's), so
        # at most the server's 422 is logged; nothing else went wrong.
        refused = "Failed to load resource: the server responded with a status of 422"
        assert [e for e in errors if not e.startswith(refused)] == [], errors
        assert len(errors) <= 1, errors
