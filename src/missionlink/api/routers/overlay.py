"""The OBS overlay: the streamer's secret URL, the page, and its event stream."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any, Literal

import jinja2
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from missionlink.api.context import AppContext
from missionlink.api.deps import ClientAddress, CurrentStreamer, Deps
from missionlink.api.overlay_stream import ROTATED, OverlayStream, Presence, channel_topic
from missionlink.api.problems import MEDIA_TYPE, Problem
from missionlink.api.stream_gate import GatedStream, gate_of
from missionlink.domain.errors import NotFound
from missionlink.services import i18n, overlay

router = APIRouter(tags=["overlay"])

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("missionlink.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
#: The token is a credential: never cache the page or stream, never leak it as a referrer.
_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Robots-Tag": "noindex, nofollow", "X-Content-Type-Options": "nosniff"}

#: The page a browser gets for an overlay URL that no longer opens a channel.
_GONE = {
    "ko": {"title": "이 오버레이 주소는 더 이상 쓸 수 없습니다",
           "why": "스트리머가 오버레이 주소를 새로 만들어 이 주소는 닫혔습니다(주소가 잘못 "
                  "입력되었을 수도 있습니다).",
           "what": "내 채널이라면 스튜디오에서 새 오버레이 주소를 복사해 OBS 브라우저 소스에 "
                   "다시 넣어 주세요.",
           "studio": "스튜디오에서 새 주소 복사하기", "brand": "MissionLink 오버레이"},
    "en": {"title": "This overlay URL no longer works",
           "why": "The streamer made a new overlay URL, so this one was closed (or it was "
                  "mistyped).",
           "what": "If this is your channel, copy the new overlay URL from the studio and "
                   "paste it into your OBS browser source.",
           "studio": "Copy the new URL in the studio", "brand": "MissionLink overlay"},
}

_LABELS = {
    "ko": {"missions": "진행 중인 미션", "won": "원", "pending": "수락 대기"},
    "en": {"missions": "Open missions", "won": " KRW", "pending": "awaiting accept"},
}


async def _channel(c: AppContext, token: str) -> int:
    streamer_id = None
    if _TOKEN.fullmatch(token):
        async with c.core_db.read() as conn:
            streamer_id = await overlay.channel_of(conn, token)
    if streamer_id is None:
        raise NotFound("this overlay URL is unknown or was rotated")
    return streamer_id


def _presence(request: Request) -> Presence:
    presence: Presence | None = getattr(request.app.state, "overlay_presence", None)
    if presence is None:
        presence = request.app.state.overlay_presence = Presence()
    return presence


@router.get("/api/v1/streamers/me/overlay", tags=["streamers"])
async def my_overlay(user: CurrentStreamer, c: Deps) -> dict[str, Any]:
    async with c.core_db.read() as conn:
        token = await overlay.token_of(conn, user.user_id)
    return {"url": overlay.overlay_url(c.settings.public_url, token)}


@router.post("/api/v1/streamers/me/overlay/rotate", tags=["streamers"])
async def rotate_overlay(user: CurrentStreamer, c: Deps) -> dict[str, Any]:
    async with c.core_db.begin() as conn:
        token = await overlay.rotate(conn, user.user_id, c.clock.now())
    # Open streams on the old token end now, on every API process.
    await c.broker.publish(channel_topic(user.user_id), {"type": ROTATED})
    return {"url": overlay.overlay_url(c.settings.public_url, token)}


def wants_html(accept: str | None) -> bool:
    """A browser (it names ``text/html``) rather than an API client; ``*/*`` alone and no
    ``Accept`` at all read as an API client, which keeps getting problem+json."""
    html = json = 0.0
    for media, q in i18n.weighted(accept):
        if media in ("text/html", "application/xhtml+xml", "text/*"):
            html = max(html, q)
        elif media in ("application/json", MEDIA_TYPE, "application/*"):
            json = max(json, q)
    return html > 0 and html >= json


def viewer_language(asked: str | None, accept_language: str | None) -> Literal["ko", "en"]:
    """``?lang=`` first, then the browser's languages in order of preference; Korean."""
    return i18n.pick_language(asked, accept_language)


def _gone_page(request: Request, lang: str | None) -> HTMLResponse:
    """A readable 404 for a person who opened a rotated or unknown overlay URL."""
    chosen = viewer_language(lang, request.headers.get("accept-language"))
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template("overlay_gone.html").render(
        lang=chosen, words=_GONE[chosen], nonce=nonce)
    csp = (f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return HTMLResponse(html, status_code=404, headers={
        **_PRIVATE, "Content-Security-Policy": csp, "Content-Language": chosen,
        "Vary": "Accept, Accept-Language"})


@router.get("/overlay/{token}", response_class=HTMLResponse, include_in_schema=False)
async def overlay_page(
    token: str, request: Request, c: Deps,
    lang: Annotated[Literal["ko", "en"] | None, Query()] = None,
) -> HTMLResponse:
    try:
        streamer_id = await _channel(c, token)
    except NotFound:
        # A person gets a page in their language; an API client keeps problem+json.
        if wants_html(request.headers.get("accept")):
            return _gone_page(request, lang)
        raise
    lang = lang or "ko"
    async with c.core_db.read() as conn:
        snap = await overlay.snapshot(conn, streamer_id, c.clock.now())
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template("overlay.html").render(
        missions=snap["missions"], server_time=snap["server_time"], nonce=nonce,
        lang=lang, labels=_LABELS[lang],
        events_url=f"/api/v1/overlay/{token}/events",
    )
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")
    return HTMLResponse(html, headers={**_PRIVATE, "Content-Security-Policy": csp})


@router.get(
    "/api/v1/overlay/{token}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "snapshot, then live events (see docs/overlay.md)"},
               503: {"model": Problem, "content": {MEDIA_TYPE: {}},
                     "description": "this server holds as many live streams as it can "
                                    "(code `streams-full`; see `Retry-After`)"}},
)
async def overlay_events(
    token: str, request: Request, c: Deps, address: ClientAddress,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    streamer_id = await _channel(c, token)
    # Taken last: from here the response owns the slot and gives it back however it ends.
    slot = gate_of(request, c.settings).acquire(f"overlay:{token}", address)
    stream = OverlayStream(c, _presence(request), streamer_id=streamer_id, token=token,
                           last_event_id=last_event_id)
    headers = {**_PRIVATE, "X-Accel-Buffering": "no"}
    return GatedStream(stream.events(), slot, headers=headers)
