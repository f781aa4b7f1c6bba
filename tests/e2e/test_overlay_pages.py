"""What people see of the overlay outside OBS: a rotated-out URL opened in a browser, and
the badge that says a streamer's overlay is connected."""

from __future__ import annotations

import httpx
import pytest

from missionlink.api.routers.overlay import viewer_language, wants_html
from missionlink.bootstrap import Container
from missionlink.services import overlay
from tests.helpers import Actor, make_user

#: What Chromium (and OBS's browser source) sends for a page.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


async def _rotated_out(client: httpx.AsyncClient, streamer: Actor) -> str:
    r = await client.get("/api/v1/streamers/me/overlay", headers=streamer.headers)
    old = httpx.URL(r.json()["url"]).path
    r = await client.post("/api/v1/streamers/me/overlay/rotate", headers=streamer.headers)
    assert r.status_code == 200, r.text
    return old


@pytest.mark.parametrize(("languages", "query", "lang", "words"), [
    ("ko-KR,ko;q=0.9,en-US;q=0.8", "", "ko", "이 오버레이 주소는 더 이상 쓸 수 없습니다"),
    ("en-US,en;q=0.9,ko;q=0.8", "", "en", "This overlay URL no longer works"),
    ("fr-FR,fr;q=0.9,en;q=0.5", "", "en", "This overlay URL no longer works"),
    ("fr-FR", "", "ko", "스튜디오에서 새 주소 복사하기"),
    ("en-US,en;q=0.9", "?lang=ko", "ko", "OBS 브라우저 소스"),
])
async def test_a_rotated_out_overlay_url_in_a_browser_is_a_readable_page(
    client: httpx.AsyncClient, container: Container, languages: str, query: str, lang: str,
    words: str,
) -> None:
    streamer = await make_user(container, "streamer")
    old = await _rotated_out(client, streamer)
    r = await client.get(old + query, headers={"Accept": BROWSER,
                                               "Accept-Language": languages})
    assert r.status_code == 404
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<html lang="{lang}">' in r.text and words in r.text
    assert r.headers["content-language"] == lang
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in r.headers["content-security-policy"]
    assert f'href="/studio?lang={lang}"' in r.text
    assert "not-found" not in r.text and "Not found" not in r.text


async def test_api_clients_still_get_a_problem_for_a_rotated_out_url(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    old = await _rotated_out(client, streamer)
    token = old.rsplit("/", 1)[1]
    asks = ["application/json", "application/problem+json", "*/*",
            "application/json, text/html;q=0.5"]
    for accept in asks:
        r = await client.get(old, headers={"Accept": accept, "Accept-Language": "ko"})
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json", accept
        assert r.json()["type"].endswith("/not-found")
    # The event stream answers EventSource (text/event-stream) with the problem, as before.
    r = await client.get(f"/api/v1/overlay/{token}/events",
                         headers={"Accept": "text/event-stream"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    # A mistyped token gets the same page.
    r = await client.get("/overlay/not-a-token", headers={"Accept": BROWSER})
    assert r.status_code == 404 and "This overlay URL" not in r.text
    assert "이 오버레이 주소는 더 이상 쓸 수 없습니다" in r.text


def test_content_negotiation_and_languages() -> None:
    assert wants_html(BROWSER)
    assert wants_html("text/html")
    assert not wants_html(None) and not wants_html("") and not wants_html("*/*")
    assert not wants_html("application/json")
    assert not wants_html("text/html;q=0, application/json")
    assert not wants_html("text/html;q=0.4, application/problem+json;q=0.9")
    assert viewer_language(None, None) == "ko"
    assert viewer_language(None, "en-GB") == "en"
    assert viewer_language(None, "ko;q=0.2, en;q=0.8") == "en"
    assert viewer_language(None, "en;q=0, ko") == "ko"
    assert viewer_language("en", "ko-KR") == "en"
    assert viewer_language(None, "de-DE, ja;q=0.9") == "ko"


async def test_the_live_badge_says_the_overlay_is_connected(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer", name="라면왕")
    async with container.core_db.begin() as conn:
        token = await overlay.token_of(conn, streamer.id)
        assert await overlay.touch_live(conn, streamer.id, token, container.clock.now())
    for path in ("/", f"/channels/{streamer.id}"):
        korean = (await client.get(path)).text
        assert "오버레이 연결됨" in korean and "방송 중" not in korean
        english = (await client.get(path + "?lang=en")).text
        assert ">Overlay connected</span>" in english and ">LIVE<" not in english
