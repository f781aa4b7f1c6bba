"""Web pages over HTTP: server-rendered Korean by default, English on request, user content
escaped, static assets served, and an error message for every code in docs/errors.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from missionlink.bootstrap import Container
from tests.helpers import Actor, make_user, top_up

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "missionlink" / "web" / "static"
STRINGS = ROOT / "src" / "missionlink" / "web" / "templates" / "pages" / "strings.json"
SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"


async def _mission(client: httpx.AsyncClient, creator: Actor, streamer: Actor,
                   title: str = "매운 라면 10봉 먹기", amount: int = 20_000,
                   description: str = "") -> dict[str, Any]:
    r = await client.post("/api/v1/missions", headers=creator.headers, json={
        "streamer_id": streamer.id, "title": title, "description": description,
        "amount": amount, "duration_seconds": 3600})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _post(client: httpx.AsyncClient, who: Actor, streamer: Actor, title: str,
                body: str = "본문") -> dict[str, Any]:
    r = await client.post(f"/api/v1/channels/{streamer.id}/posts", headers=who.headers,
                          json={"title": title, "body": body})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _page(client: httpx.AsyncClient, path: str, **kwargs: Any) -> str:
    r = await client.get(path, **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    return r.text


async def test_home_lists_streamers_with_live_badge_and_recent_missions(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer", name="라면왕")
    fan = await make_user(container)
    await top_up(client, fan, 50_000)
    await _mission(client, fan, streamer, "매운 라면 10봉 먹기")
    html = await _page(client, "/")
    assert '<html lang="ko">' in html
    assert "스트리머" in html and "최근 미션" in html
    assert f'href="/channels/{streamer.id}">라면왕</a>' in html
    assert "매운 라면 10봉 먹기" in html and "20,000원" in html and "수락 대기" in html
    assert "방송 중" not in html  # no overlay stream is connected
    english = await _page(client, "/?lang=en")
    assert "20,000 KRW" in english and "1 pledge<" in english and "Awaiting acceptance" in english


async def test_pages_are_korean_by_default_and_english_on_request(
    client: httpx.AsyncClient,
) -> None:
    korean = await _page(client, "/login")
    assert '<html lang="ko">' in korean and "비밀번호" in korean and ">English</button>" in korean
    english = await _page(client, "/login?lang=en")
    assert '<html lang="en">' in english and "Password" in english and "비밀번호" not in english
    assert ">한국어</button>" in english
    # The language toggle remembers the choice in a cookie as well as in localStorage.
    remembered = await _page(client, "/signup", headers={"Cookie": "ml_lang=en"})
    assert '<html lang="en">' in remembered and "Display name" in remembered
    assert '<html lang="ko">' in await _page(client, "/signup?lang=ko",
                                             headers={"Cookie": "ml_lang=en"})
    assert '<html lang="ko">' in await _page(client, "/signup?lang=fr")


async def test_every_page_renders_in_both_languages(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer", name="Streamer")
    fan = await make_user(container, name="Fan")
    await top_up(client, fan, 50_000)
    mission = await _mission(client, fan, streamer, title="Ramen challenge")
    post = await _post(client, fan, streamer, "First post", body="Hello")
    paths = ["/", "/login", "/signup", "/wallet", "/me", "/studio", f"/channels/{streamer.id}",
             f"/channels/{streamer.id}/open-missions", f"/posts/{post['id']}",
             f"/missions/{mission['id']}", "/admin/operations", "/admin/payouts"]
    for path in paths:
        korean = await _page(client, path)
        assert re.search("[가-힣]", korean), path
        english = await _page(client, path, params={"lang": "en"})
        # No Korean left but the names of the languages themselves.
        assert not re.search("[가-힣]", english.replace("한국어", "")), path


async def test_pages_send_a_strict_content_security_policy(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_channel_page_shows_open_missions_and_the_board_with_user_content_escaped(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer", name="<b>Streamer</b>")
    fan = await make_user(container, name="<i>fan</i>")
    await top_up(client, fan, 50_000)
    mission = await _mission(client, fan, streamer, title=f"Eat {SCRIPT}")
    await _post(client, fan, streamer, SCRIPT, body=SCRIPT)
    html = await _page(client, f"/channels/{streamer.id}")
    assert SCRIPT not in html
    assert "<b>Streamer</b>" not in html and "&lt;b&gt;Streamer&lt;/b&gt;" in html
    assert "<i>fan</i>" not in html and "&lt;i&gt;fan&lt;/i&gt;" in html
    assert f"Eat {ESCAPED}" in html and ESCAPED in html
    assert "진행 중인 미션" in html and "팬 게시판" in html and "미션 제안" in html
    assert f'href="/missions/{mission["id"]}"' in html
    assert "20,000원" in html and f'data-ends="{mission["accept_by"]}"' in html
    # Accept/reject for the streamer and cancel for the creator, hidden until the script
    # knows who is looking.
    assert f'data-users="{streamer.id}" hidden' in html
    assert f'data-users="{fan.id}" hidden' in html and 'data-op="cancel"' in html


async def test_channel_board_search_uses_the_query(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await _post(client, fan, streamer, "신라면 먹방 후기")
    await _post(client, fan, streamer, "Speedrun night")
    html = await _page(client, f"/channels/{streamer.id}", params={"q": "라면"})
    assert "신라면 먹방 후기" in html and "Speedrun night" not in html
    assert "\u2018라면\u2019 검색 결과" in html  # typographic quotes around the query
    none = await _page(client, f"/channels/{streamer.id}", params={"q": "<없음>"})
    assert "검색 결과가 없습니다" in none and "&lt;없음&gt;" in none


async def test_board_pages_with_a_cursor_link(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    for n in range(21):
        await _post(client, fan, streamer, f"post {n:02d}")
    html = await _page(client, f"/channels/{streamer.id}")
    assert "post 20" in html and "post 00" not in html
    link = re.search(r'href="\?cursor=([^"]+)"', html)
    assert link is not None
    older = await _page(client, f"/channels/{streamer.id}?cursor={link.group(1)}")
    assert "post 00" in older and "post 20" not in older


async def test_post_page_shows_the_post_and_comments_escaped(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container, name="열혈팬")
    post = await _post(client, fan, streamer, SCRIPT, body="줄 하나\n줄 둘")
    r = await client.post(f"/api/v1/posts/{post['id']}/comments", headers=fan.headers,
                          json={"body": f"댓글 {SCRIPT}"})
    assert r.status_code == 201
    html = await _page(client, f"/posts/{post['id']}")
    assert SCRIPT not in html
    assert f"<title>{ESCAPED} · MissionLink</title>" in html
    assert f"댓글 {ESCAPED}" in html and "열혈팬" in html and "줄 하나\n줄 둘" in html
    assert 'data-action="delete-post"' in html and 'data-form="comment"' in html


async def test_mission_page_shows_status_total_backers_and_pools(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer", name="라면왕")
    creator = await make_user(container, name="제안왕")
    backer = await make_user(container, name="<u>후원러</u>")
    await top_up(client, creator, 50_000)
    await top_up(client, backer, 50_000)
    mission = await _mission(client, creator, streamer, description=f"설명 {SCRIPT}")
    r = await client.post(f"/api/v1/missions/{mission['id']}/pledges", headers=backer.headers,
                          json={"amount": 5_000})
    assert r.status_code == 201
    r = await client.post(f"/api/v1/missions/{mission['id']}/bets", headers=backer.headers,
                          json={"side": "success", "points": 300})
    assert r.status_code == 201
    html = await _page(client, f"/missions/{mission['id']}")
    assert "수락 대기" in html and "25,000원" in html and "후원 건수" in html
    assert "&lt;u&gt;후원러&lt;/u&gt;" in html and "5,000원" in html and "제안왕" in html
    assert f"설명 {ESCAPED}" in html and SCRIPT not in html
    assert "승부 예측" in html and "300 포인트" in html and 'data-form="bet"' in html
    assert 'data-form="pledge"' in html and "수수료" in html and "10%" in html
    english = await _page(client, f"/missions/{mission['id']}?lang=en")
    assert "Awaiting acceptance" in english and "25,000 KRW" in english
    assert "Prediction" in english


async def test_ended_missions_offer_no_pledge_or_bet_forms(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    await top_up(client, creator, 50_000)
    mission = await _mission(client, creator, streamer)
    r = await client.post(f"/api/v1/missions/{mission['id']}/reject", headers=streamer.headers)
    assert r.status_code == 200
    html = await _page(client, f"/missions/{mission['id']}")
    assert "거절됨" in html and "정산 중" in html
    assert 'data-form="pledge"' not in html and 'data-form="bet"' not in html
    assert "베팅이 마감되었습니다" in html and 'data-action="mission"' not in html
    channel = await _page(client, f"/channels/{streamer.id}")
    assert "지난 미션" in channel and "진행 중인 미션이 없습니다" in channel


async def test_open_missions_fragment_for_the_studio(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 50_000)
    await _mission(client, fan, streamer, title=SCRIPT)
    html = await _page(client, f"/channels/{streamer.id}/open-missions")
    assert html.lstrip().startswith("<section id=\"open-missions\"")
    assert ESCAPED in html and 'data-op="accept"' in html and 'data-op="reject"' in html


@pytest.mark.parametrize("path", ["/missions/999999", "/channels/999999", "/posts/999999",
                                  "/missions/abc", "/channels/0", "/posts/-1",
                                  "/channels/999999/open-missions"])
async def test_unknown_things_get_an_html_404(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "페이지를 찾을 수 없습니다" in r.text


async def test_a_malformed_cursor_shows_the_first_page(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    assert "팬 게시판" in await _page(client, f"/channels/{streamer.id}?cursor=%%%")


async def test_static_assets_are_served_with_their_types(client: httpx.AsyncClient) -> None:
    html = await _page(client, "/")
    version = re.search(r'src="/static/app\.js\?v=([0-9a-f]+)"', html)
    assert version is not None and f'href="/static/app.css?v={version.group(1)}"' in html
    js = await client.get("/static/app.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "navigator.locks" in js.text and "BroadcastChannel" in js.text
    css = await client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await client.get("/static/missing.js")).status_code == 404


async def test_pages_stay_out_of_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if not p.startswith(("/api/", "/healthz", "/readyz",
                                                      "/metrics", "/overlay/"))]


def _error_codes() -> dict[str, str]:
    """``code -> Korean message`` from the table in docs/errors.md."""
    text = (ROOT / "docs" / "errors.md").read_text("utf-8")
    rows = re.findall(r"^\| `([a-z-]+)` \| \d+ \| .+? \| (.+?) \|$", text, re.MULTILINE)
    assert len(rows) >= 16
    return dict(rows)


def test_the_script_translates_every_error_code_in_docs() -> None:
    script = (STATIC / "app.js").read_text("utf-8")
    table = script[script.index("const ERRORS = {"):script.index("const STATUS_CODES")]
    for code, korean in _error_codes().items():
        entry = re.search(rf"'?{re.escape(code)}'?: \['([^']+)', '([^']+)'\]", table)
        assert entry is not None, code
        assert entry.group(1) == korean, code
        assert entry.group(2), code


def test_every_visible_string_has_korean_and_english() -> None:
    strings = json.loads(STRINGS.read_text("utf-8"))
    for key, pair in strings.items():
        assert set(pair) == {"ko", "en"} and pair["ko"] and pair["en"], key
    script = (STATIC / "app.js").read_text("utf-8")
    used = set(re.findall(r"\bt\('([a-z_]+)'", script))
    used |= set(re.findall(r"\bT\.([A-Za-z_]+)", script))
    assert used and used <= set(strings), used - set(strings)


def test_glossary_terms_are_the_ones_the_pages_use() -> None:
    ko = {k: v["ko"] for k, v in json.loads(STRINGS.read_text("utf-8")).items()}
    expected = {"pledge": "후원", "backers": "후원자", "accept": "수락", "reject": "거절",
                "topup": "충전", "wallet": "지갑", "fan_board": "팬 게시판", "fee": "수수료",
                "overlay": "오버레이", "prediction": "승부 예측", "points": "포인트",
                "comments": "댓글", "status_expired": "만료", "side_success": "성공",
                "side_failure": "실패", "kind_refund": "환불", "kind_payout": "지급"}
    for key, term in expected.items():
        assert ko[key] == term, key


def test_no_string_key_hides_behind_a_dict_method() -> None:
    # Jinja resolves ``t.copy`` to dict.copy before the key "copy": keys must not clash.
    strings = json.loads(STRINGS.read_text("utf-8"))
    assert not set(strings) & set(dir(dict))
