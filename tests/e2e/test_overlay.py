"""Overlay URL, rotation and the OBS page, through the HTTP API."""

from __future__ import annotations

import httpx
import markupsafe

from missionlink.bootstrap import Container
from tests.helpers import Actor, make_user, top_up


async def _overlay_url(client: httpx.AsyncClient, streamer: Actor) -> str:
    r = await client.get("/api/v1/streamers/me/overlay", headers=streamer.headers)
    assert r.status_code == 200, r.text
    url: str = r.json()["url"]
    return url


def _path(url: str) -> str:
    return httpx.URL(url).path


async def test_streamer_gets_an_absolute_secret_overlay_url(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    viewer = await make_user(container)
    url = await _overlay_url(client, streamer)
    base = container.settings.public_url.rstrip("/")
    assert url.startswith(base + "/overlay/")
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 24
    assert await _overlay_url(client, streamer) == url
    assert (await client.get("/api/v1/streamers/me/overlay")).status_code == 401
    r = await client.get("/api/v1/streamers/me/overlay", headers=viewer.headers)
    assert r.status_code == 403
    r = await client.post("/api/v1/streamers/me/overlay/rotate", headers=viewer.headers)
    assert r.status_code == 403


async def test_rotating_invalidates_the_old_url_at_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    old = await _overlay_url(client, streamer)
    assert (await client.get(_path(old))).status_code == 200
    r = await client.post("/api/v1/streamers/me/overlay/rotate", headers=streamer.headers)
    assert r.status_code == 200
    new = r.json()["url"]
    assert new != old and await _overlay_url(client, streamer) == new
    old_token = old.rsplit("/", 1)[1]
    for path in (_path(old), f"/api/v1/overlay/{old_token}/events"):
        r = await client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/not-found")
    assert (await client.get(_path(new))).status_code == 200


async def test_unknown_tokens_are_404_problems(
    client: httpx.AsyncClient, container: Container
) -> None:
    for token in ("nope", "A" * 32, "x" * 500, "%3Cscript%3E"):
        for path in (f"/overlay/{token}", f"/api/v1/overlay/{token}/events"):
            r = await client.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"] == "application/problem+json"


async def test_overlay_page_lists_open_missions_with_titles_escaped(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 50_000)
    title = "<script>alert('xss')</script> 라면 & 김밥"
    r = await client.post("/api/v1/missions", headers=fan.headers, json={
        "streamer_id": streamer.id, "title": title, "amount": 12_000,
        "duration_seconds": 3600})
    assert r.status_code == 201
    r = await client.post("/api/v1/missions", headers=fan.headers, json={
        "streamer_id": streamer.id, "title": "cancelled one", "amount": 1_000,
        "duration_seconds": 3600})
    await client.post(f"/api/v1/missions/{r.json()['id']}/cancel", headers=fan.headers)
    page = await client.get(_path(await _overlay_url(client, streamer)))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert str(markupsafe.escape(title)) in text
    assert "<script>alert" not in text
    assert "12,000" in text and "cancelled one" not in text
    assert "background: transparent" in text and "EventSource" in text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    english = await client.get(_path(await _overlay_url(client, streamer)) + "?lang=en")
    assert "Open missions" in english.text
