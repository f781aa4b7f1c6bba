"""Web pages: server-rendered HTML over the read side, and the static assets they load.

Public data (directory, missions, backers, the fan board) is rendered here, escaped by
Jinja; everything that needs the caller's identity is filled in by /static/app.js, which
holds the access token and calls the JSON API. A page is therefore the same for every
viewer in one language, and the public pages a spike hammers (home, channel, its open
missions, mission, post) come from the read model (``services.read_model``): rendered once
per key and language, dropped by the same tags as the JSON reads, so a write shows at once
to its writer and within one second to everyone, and a burst of viewers makes one render.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from missionlink.api.context import AppContext
from missionlink.api.pagination import Page, encode_int, encode_newer
from missionlink.api.params import parse_id
from missionlink.api.schemas.core import MISSION_DESCRIPTION, MISSION_TITLE
from missionlink.domain.board import BODY, COMMENT, SEARCH, TITLE, check_search
from missionlink.domain.errors import InvalidInput, NotFound
from missionlink.domain.identity import DISPLAY_NAME_MAX, EMAIL_MAX, PASSWORD_MAX, PASSWORD_MIN
from missionlink.domain.missions import Status
from missionlink.domain.payouts import (
    ACCOUNT_NUMBER_MAX,
    ACCOUNT_NUMBER_MIN,
    BANK_CODES,
    FAILURE_REASON_MAX,
    HOLDER_MAX,
)
from missionlink.domain.pledge_messages import MESSAGE_MAX
from missionlink.domain.profile import NAME_SEARCH, PLATFORM_HOSTS, check_name_search
from missionlink.domain.timestamps import iso
from missionlink.services import board, channels, predictions, read_model, top_backers
from missionlink.services.channels import MIN_ACCEPT_TIMEOUT_SECONDS
from missionlink.services.mission_views import get_mission, list_backers, list_missions
from missionlink.services.read_model import Loaded
from missionlink.services.wallet import MIN_TOPUP

router = APIRouter(include_in_schema=False)
router.mount("/static", StaticFiles(packages=[("missionlink.web", "static")]), name="static")

LANGS = ("ko", "en")
LANG_COOKIE = "ml_lang"
_WEB = resources.files("missionlink.web")
#: Every visible string, ``{key: {"ko": ..., "en": ...}}``, regrouped per language.
_PAIRS: dict[str, dict[str, str]] = json.loads(
    _WEB.joinpath("templates/pages/strings.json").read_text("utf-8")
)
STRINGS = {lang: {key: pair[lang] for key, pair in _PAIRS.items()} for lang in LANGS}
#: Changes whenever app.js or app.css do, so browsers never pair a new page with an old script.
ASSET_VERSION = hashlib.sha256(
    b"".join(_WEB.joinpath("static", n).read_bytes() for n in ("app.js", "app.css", "payments.js"))
).hexdigest()[:12]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store",
           "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
           "X-Frame-Options": "DENY", "Vary": "Cookie"}


def _short_time(value: str | None) -> str:
    """A readable UTC fallback; the script rewrites it in the reader's time zone."""
    return value[:16].replace("T", " ") + " UTC" if value else ""


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("missionlink.web", "templates/pages"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
def ratio_text(value: float) -> str:
    """A payout ratio as people read odds: at most two decimals, no trailing zeros
    (1.6667 -> "1.67", 2.0 -> "2", 1.5 -> "1.5")."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


_env.filters["num"] = lambda n: f"{n:,}"
_env.filters["ratio"] = ratio_text
_env.filters["shorttime"] = _short_time
#: The hosts a channel link may name (domain/profile.py), for the studio's check before sending.
_env.globals["link_hosts"] = " ".join(sorted(PLATFORM_HOSTS))


def page_lang(request: Request) -> str:
    """``?lang=`` first, then the cookie the language toggle sets; Korean by default."""
    for value in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value in LANGS:
            return value
    return "ko"


def _context(request: Request) -> AppContext:
    container: AppContext = request.app.state.container
    return container


def render(request: Request, template: str, *, status: int = 200, **ctx: Any) -> HTMLResponse:
    c = _context(request)
    html = render_html(c, page_lang(request), template, server_time=iso(c.clock.now()) or "", **ctx)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def render_html(c: AppContext, lang: str, template: str, *, server_time: str,
                **ctx: Any) -> str:
    strings = STRINGS[lang]

    def fmt(key: str, **values: Any) -> str:
        """``strings[key]`` with ``{name}`` filled in; ``key_one`` when ``n`` is 1."""
        text = strings.get(f"{key}_one", strings[key]) if values.get("n") == 1 else strings[key]
        for name, value in values.items():
            text = text.replace("{" + name + "}", f"{value:,}" if isinstance(value, int)
                                else str(value))
        return text

    return _env.get_template(template).render(
        lang=lang, other_lang="en" if lang == "ko" else "ko", t=strings, fmt=fmt,
        asset_version=ASSET_VERSION, server_time=server_time, limits=_limits(c), **ctx,
    )


def _limits(c: AppContext) -> dict[str, int]:
    """Every bound a form checks before sending, from the settings and the domain's rules
    that the API enforces: the pages render them as ``min``/``max``/``minlength``/
    ``maxlength`` and the script reads them from there, so no number is written twice."""
    s = c.settings
    return {"min_pledge": s.min_pledge, "max_pledge": s.max_pledge, "max_topup": s.max_topup,
            "min_topup": MIN_TOPUP,
            "min_mission_seconds": s.min_mission_seconds,
            "max_mission_seconds": s.max_mission_seconds,
            "min_accept_timeout_seconds": MIN_ACCEPT_TIMEOUT_SECONDS,
            "result_grace_seconds": s.result_grace_seconds, "message_max": MESSAGE_MAX,
            "password_min": PASSWORD_MIN, "password_max": PASSWORD_MAX,
            "email_max": EMAIL_MAX, "display_name_max": DISPLAY_NAME_MAX,
            "mission_title_max": MISSION_TITLE.max_chars,
            "mission_description_max": MISSION_DESCRIPTION.max_chars,
            "post_title_max": TITLE.max_chars, "post_body_max": BODY.max_chars,
            "comment_max": COMMENT.max_chars, "search_max": SEARCH.max_chars}


#: The longest ``next`` path a login link carries.
NEXT_MAX = 2000


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a path on this site to return to after login, else None.

    Only an absolute path of printable ASCII: ``//host`` and ``/\\host`` (which browsers
    read as another host), a scheme (``https://…``, ``javascript:``), backslashes anywhere,
    spaces and control characters (browsers drop tabs and newlines, so a slash, a tab and
    ``/host`` would become ``//host``) are all refused.
    """
    if not value or len(value) > NEXT_MAX or not value.startswith("/"):
        return None
    if value.startswith("//") or "\\" in value:
        return None
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def _not_found(request: Request) -> HTMLResponse:
    return render(request, "not_found.html", status=404, page="not-found")


def _cursor(request: Request) -> int | None:
    try:
        return Page(1, request.query_params.get("cursor") or None).int_cursor()
    except InvalidInput:
        return None


def _board_cursor(request: Request) -> tuple[int | None, int | None]:
    """The board's ``(before_id, after_id)``: its pager links go both ways."""
    try:
        return Page(1, request.query_params.get("cursor") or None).int_cursor_both_ways()
    except InvalidInput:
        return None, None


def _search(request: Request) -> str | None:
    """The search box's text, under the board's text policy; text it refuses searches nothing."""
    try:
        return check_search((request.query_params.get("q") or "")[:4 * SEARCH.max_chars])
    except InvalidInput:
        return None


def _name_search(request: Request) -> str | None:
    """The directory's search text; text the API would refuse searches nothing."""
    try:
        return check_name_search((request.query_params.get("q") or "")[
            :4 * NAME_SEARCH.max_chars])
    except InvalidInput:
        return None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def with_times(m: dict[str, Any], c: AppContext) -> dict[str, Any]:
    """Add ``ends_at`` (what the countdown runs to) and what is still open at the server's
    time: pledges and bets until the deadline (``accept_by`` while pending), the result of
    an accepted mission until ``result_by``; ``in_grace`` between the two."""
    deadline, accept_by = _parse(m["deadline_at"]), _parse(m["accept_by"])
    result_by = _parse(m.get("result_by")) or deadline
    accepted_at, now = _parse(m["accepted_at"]), c.clock.now()
    closes = deadline
    if m["status"] == Status.pending and accept_by and deadline:
        closes = min(accept_by, deadline)
    is_open = m["status"] in (Status.pending, Status.accepted)
    pledges_open = is_open and closes is not None and now < closes
    result_open = m["status"] == Status.accepted and result_by is not None and now < result_by
    in_grace = result_open and not pledges_open
    window = timedelta(seconds=c.settings.bet_window_seconds)
    bets_open = pledges_open and (m["status"] == Status.pending or (
        accepted_at is not None and now < accepted_at + window))
    return {**m, "ends_at": iso(result_by if in_grace else closes), "open": is_open,
            "closes_at": iso(closes), "pledges_open": pledges_open,
            "result_open": result_open, "in_grace": in_grace, "bets_open": bets_open,
            "accept_by_is_deadline": accept_by == deadline}


def changes_at(m: dict[str, Any], c: AppContext, now: datetime) -> datetime | None:
    """The next moment after ``now`` at which :func:`with_times` (or the mission's status)
    says something else about an open mission without any write: acceptance timeout,
    deadline, end of the result's grace period, close of the betting window."""
    if m["status"] not in (Status.pending, Status.accepted):
        return None
    accepted_at = _parse(m["accepted_at"])
    moments = [_parse(m["accept_by"]), _parse(m["deadline_at"]), _parse(m.get("result_by")),
               accepted_at + timedelta(seconds=c.settings.bet_window_seconds)
               if accepted_at is not None else None]
    return min((t for t in moments if t is not None and t > now), default=None)


def _missions_change_at(missions: Iterable[dict[str, Any]], c: AppContext,
                        now: datetime) -> datetime | None:
    return read_model.earliest(changes_at(m, c, now) for m in missions)


async def open_missions(c: AppContext, streamer_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with c.core_db.read() as conn:
        for status in (Status.pending, Status.accepted):
            items, _ = await list_missions(conn, now=c.clock.now(), limit=50, before_id=None,
                                           streamer_id=streamer_id, status=status)
            found += items
    return [with_times(m, c) for m in sorted(found, key=lambda m: -int(m["id"]))]


# Pages from the read model -------------------------------------------------------------

#: Where a cached page has the current server time and the strings of its language: both
#: are put in as the page is served, so an entry holds neither a stale clock (the script's
#: countdowns run from it) nor a copy of the strings (most of a small page's bytes). Made
#: of ``<``, which Jinja escapes in any text it is given, so only a template can hold one.
TIME_MARK = "<!--ml:server-time-->"
STRINGS_MARK = "<!--ml:strings-->"


class _Verbatim(str):
    """Text that Jinja writes as it is (its ``__html__`` protocol): for the time mark."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


#: The strings as the base template writes them (``{{ t|tojson }}``), per language.
_STRINGS_JSON = {lang: _env.from_string("{{ t|tojson }}").render(t=STRINGS[lang])
                 for lang in LANGS}
_STRINGS_BYTES = {lang: text.encode() for lang, text in _STRINGS_JSON.items()}
_TIME_MARK_BYTES, _STRINGS_MARK_BYTES = TIME_MARK.encode(), STRINGS_MARK.encode()


@dataclass(frozen=True, slots=True)
class View:
    """What a public page shows, as read from the database: its template and values, the
    read model's tags that drop it, and when the clock alone changes it."""

    template: str
    page: str
    values: dict[str, Any]
    tags: frozenset[str]
    valid_until: datetime | None = None


async def cached_page(request: Request, key: tuple[Hashable, ...],
                      read: Callable[[], Awaitable[View]]) -> HTMLResponse:
    """The public page ``key`` in the caller's language, from this replica's read model;
    ``read`` runs (once, however many ask at once) on a miss, and its ``NotFound`` is the
    not-found page (never stored)."""
    c, lang = _context(request), page_lang(request)

    async def load() -> Loaded:
        view = await read()
        html = render_html(c, lang, view.template, page=view.page,
                           server_time=_Verbatim(TIME_MARK), **view.values)
        html = html.replace(_STRINGS_JSON[lang], STRINGS_MARK, 1)
        return Loaded(html.encode(), view.tags, view.valid_until)

    cache = c.read_cache
    cache.listen(c.broker)
    try:
        entry = await cache.get(("page", lang, *key), load)
    except NotFound:
        return _not_found(request)
    body = (entry.body.replace(_STRINGS_MARK_BYTES, _STRINGS_BYTES[lang], 1)
            .replace(_TIME_MARK_BYTES, (iso(c.clock.now()) or "").encode(), 1))
    return HTMLResponse(body, headers=HEADERS)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    c, cursor, query = _context(request), _cursor(request), _name_search(request)

    async def read() -> View:
        now = c.clock.now()
        async with c.core_db.read() as conn:
            streamers, nxt = await channels.list_streamers(conn, now=now, limit=48,
                                                           after_id=cursor, query=query)
            recent, _ = await list_missions(conn, now=now, limit=12, before_id=None,
                                            streamer_id=None, status=None)
            names = {s["id"]: s["display_name"] for s in streamers}
            for m in recent:
                if m["streamer_id"] not in names:
                    found = await channels.get_streamer(conn, m["streamer_id"], now)
                    names[m["streamer_id"]] = found["display_name"]
        tags = {read_model.DIRECTORY_TAG, read_model.MISSIONS_TAG,
                *(read_model.mission_tag(m["id"]) for m in recent),
                *(read_model.channel_tag(sid) for sid in names)}
        return View("home.html", "home", {
            "streamers": streamers, "next_cursor": encode_int(nxt),
            "missions": [with_times(m, c) for m in recent], "names": names,
            "query": query or "",
        }, frozenset(tags), _missions_change_at(recent, c, now))

    return await cached_page(request, ("home", cursor, query), read)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", page="login",
                  next=safe_next(request.query_params.get("next")))


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request) -> HTMLResponse:
    return render(request, "signup.html", page="signup",
                  next=safe_next(request.query_params.get("next")))


#: The browser SDK of each real payment provider, and what the wallet page's
#: Content-Security-Policy adds for it (the origins each provider documents).
_PAY_WIDGETS: dict[str, tuple[str, dict[str, str]]] = {
    "portone": ("https://cdn.portone.io/v2/browser-sdk.js", {
        "script-src": "https://cdn.portone.io", "connect-src": "https://*.portone.io",
        # The payment window is the card company's or easy-pay's own page, in a frame or
        # a redirect that PortOne's script posts.
        "frame-src": "https:", "form-action": "https:"}),
    "stripe": ("https://js.stripe.com/v3/", {
        "script-src": "https://js.stripe.com", "connect-src": "https://api.stripe.com",
        "frame-src": "https://js.stripe.com https://hooks.stripe.com"}),
}


def _csp_with(extra: dict[str, str]) -> str:
    parts = [p.strip() for p in CSP.split(";")]
    seen = {p.split(" ", 1)[0] for p in parts}
    out = [f"{p} {extra[p.split(' ', 1)[0]]}" if p.split(" ", 1)[0] in extra else p
           for p in parts]
    out += [f"{name} {value}" for name, value in extra.items() if name not in seen]
    return "; ".join(out)


@router.get("/wallet", response_class=HTMLResponse)
async def wallet_page(request: Request) -> HTMLResponse:
    c = _context(request)
    provider = c.payments.name
    sdk, extra = _PAY_WIDGETS.get(provider, ("", {}))
    response = render(request, "wallet.html", page="wallet", payment={
        "provider": provider, "sdk": sdk, "daily_limit": c.settings.daily_topup_limit},
        refund_window_days=c.settings.refund_window_days,
        next=safe_next(request.query_params.get("next")))
    if extra:
        # Only the wallet page, and only when that provider is configured, may load its SDK.
        response.headers["Content-Security-Policy"] = _csp_with(extra)
    return response


@router.get("/me", response_class=HTMLResponse)
async def my_page(request: Request) -> HTMLResponse:
    """My page: the caller's pledges, bets and proposed missions (filled in by app.js from
    ``/api/v1/me/...``), with the recent results of what they backed."""
    return render(request, "me.html", page="me")


@router.get("/studio", response_class=HTMLResponse)
async def studio_page(request: Request) -> HTMLResponse:
    return render(request, "studio.html", page="studio")


@router.get("/studio/payouts", response_class=HTMLResponse)
async def payouts_page(request: Request) -> HTMLResponse:
    """Streamers only (the API checks): the payout account, earnings, withdrawals."""
    c = _context(request)
    return render(request, "payouts.html", page="payouts", banks=sorted(BANK_CODES.items()),
                  payout={"minimum": c.settings.payout_minimum,
                          "hold_days": c.settings.payout_hold_days,
                          "account_min": ACCOUNT_NUMBER_MIN, "account_max": ACCOUNT_NUMBER_MAX,
                          "holder_max": HOLDER_MAX, "year": c.clock.now().year})


@router.get("/studio/payouts/statement/{year}", response_class=HTMLResponse)
async def statement_page(request: Request, year: str) -> HTMLResponse:
    """The yearly statement, printable (filled in from /api/v1/me/statements/{year})."""
    if not (year.isascii() and year.isdigit() and 2000 <= int(year) <= 2100):
        return _not_found(request)
    return render(request, "statement.html", page="statement", year=int(year))


@router.get("/admin/operations", response_class=HTMLResponse)
async def operations_page(request: Request) -> HTMLResponse:
    """Admins only (the figures come from GET /api/v1/admin/operations, which checks)."""
    return render(request, "operations.html", page="operations")


@router.get("/admin/payouts", response_class=HTMLResponse)
async def admin_payouts_page(request: Request) -> HTMLResponse:
    """Admins only (the API checks): every streamer's withdrawals, the bank transfer batch
    and marking each exported line paid or failed."""
    return render(request, "admin_payouts.html", page="admin-payouts",
                  reason_max=FAILURE_REASON_MAX)


async def _channel_missions(c: AppContext, sid: int) -> tuple[list[dict[str, Any]], set[str]]:
    """The channel's open missions (with their times) and the tags of what they show."""
    missions = await open_missions(c, sid)
    return missions, {read_model.channel_tag(sid),
                      *(read_model.mission_tag(m["id"]) for m in missions)}


@router.get("/channels/{streamer_id}", response_class=HTMLResponse)
async def channel_page(request: Request, streamer_id: str) -> HTMLResponse:
    c, sid = _context(request), parse_id(streamer_id)
    if sid is None:
        return _not_found(request)
    query = _search(request)
    before_id, after_id = _board_cursor(request)

    async def read() -> View:
        now = c.clock.now()
        async with c.core_db.read() as conn:
            streamer = await channels.get_streamer(conn, sid, now)
            posts, nxt, prev = await board.list_posts_both_ways(
                conn, streamer_id=sid, limit=20, before_id=before_id, after_id=after_id,
                query=query)
            recent, _ = await list_missions(conn, now=now, limit=20, before_id=None,
                                            streamer_id=sid, status=None)
            # A pledge names its channel; the clock moves them as open missions end.
            backers = await top_backers.top_backers(conn, streamer_id=sid, now=now)
        ended = [with_times(m, c) for m in recent
                 if m["status"] not in (Status.pending, Status.accepted)][:10]
        missions, tags = await _channel_missions(c, sid)
        # A new post or mission names the channel; a comment, edit or deletion names its
        # post; a pledge or a change of status names its mission.
        tags |= {*(read_model.post_tag(p["id"]) for p in posts),
                 *(read_model.mission_tag(m["id"]) for m in ended)}
        return View("channel.html", "channel", {
            "streamer": streamer, "missions": missions, "ended": ended, "posts": posts,
            "next_cursor": encode_int(nxt), "prev_cursor": encode_newer(prev),
            "query": query or "", "top_backers": backers,
        }, frozenset(tags), _missions_change_at(missions, c, now))

    return await cached_page(request, ("channel", sid, before_id, after_id, query), read)


@router.get("/channels/{streamer_id}/open-missions", response_class=HTMLResponse)
async def open_missions_fragment(request: Request, streamer_id: str) -> HTMLResponse:
    """The channel's open missions alone, for the studio page to load."""
    c, sid = _context(request), parse_id(streamer_id)
    if sid is None:
        return _not_found(request)

    async def read() -> View:
        async with c.core_db.read() as conn:
            await channels.get_streamer(conn, sid, c.clock.now())
        missions, tags = await _channel_missions(c, sid)
        return View("open_missions.html", "fragment",
                    {"missions": missions, "streamer_id": sid}, frozenset(tags),
                    _missions_change_at(missions, c, c.clock.now()))

    return await cached_page(request, ("open-missions", sid), read)


@router.get("/posts/{post_id}", response_class=HTMLResponse)
async def post_page(request: Request, post_id: str) -> HTMLResponse:
    c, pid = _context(request), parse_id(post_id)
    if pid is None:
        return _not_found(request)
    before_id, after_id = _board_cursor(request)

    async def read() -> View:
        async with c.core_db.read() as conn:
            post = await board.get_post(conn, pid)
            comments, nxt, prev = await board.list_comments_both_ways(
                conn, post_id=pid, limit=50, before_id=before_id, after_id=after_id)
            streamer = await channels.get_streamer(conn, post["streamer_id"], c.clock.now())
        tags = {read_model.post_tag(pid), read_model.channel_tag(post["streamer_id"])}
        return View("post.html", "post", {
            "post": post, "comments": comments, "next_cursor": encode_int(nxt),
            "prev_cursor": encode_newer(prev), "streamer": streamer,
        }, frozenset(tags))

    return await cached_page(request, ("post", pid, before_id, after_id), read)


@router.get("/missions/{mission_id}", response_class=HTMLResponse)
async def mission_page(request: Request, mission_id: str) -> HTMLResponse:
    c, mid = _context(request), parse_id(mission_id)
    if mid is None:
        return _not_found(request)
    cursor = _cursor(request)

    async def read() -> View:
        now = c.clock.now()
        async with c.core_db.read() as conn:
            mission = await get_mission(conn, mid, now)
            backers, nxt = await list_backers(conn, mid, limit=50, before_id=cursor)
            pools = await predictions.prediction(conn, mission_id=mid, viewer_id=None)
            streamer = await channels.get_streamer(conn, mission["streamer_id"], now)
        tags = {read_model.mission_tag(mid), read_model.channel_tag(mission["streamer_id"])}
        return View("mission.html", "mission", {
            "m": with_times(mission, c), "backers": backers, "next_cursor": encode_int(nxt),
            "pools": pools, "streamer": streamer,
        }, frozenset(tags), changes_at(mission, c, now))

    return await cached_page(request, ("mission", mid, cursor), read)
