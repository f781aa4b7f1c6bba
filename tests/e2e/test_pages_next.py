"""Login returns to the page it was opened from: ``next`` is rendered only when it is a
path on this site, never another host, a scheme or anything a browser could read as one."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from missionlink.api.routers.pages import safe_next

GOOD = ["/", "/missions/12", "/channels/3?lang=en&q=%EB%9D%BC%EB%A9%B4", "/wallet#top",
        "/posts/1?cursor=MTI"]
BAD = [None, "", "//evil.example", "//evil.example/path", "https://evil.example/",
       "http:/evil.example", "javascript:alert(1)", "/\\evil.example", "\\\\evil.example",
       "/ok\\..\\x", "/\t/evil.example", "/\n/evil.example", "/ /evil", "missions/1",
       "/" + "a" * 2000, "/라면", "/\x00"]


@pytest.mark.parametrize("value", GOOD)
def test_paths_on_this_site_are_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize("value", BAD)
def test_other_hosts_schemes_and_backslashes_are_refused(value: str | None) -> None:
    assert safe_next(value) is None


def _next_of(html: str, form: str) -> str:
    found = re.search(rf'data-form="{form}" data-next="([^"]*)"', html)
    assert found, html
    return found.group(1)


async def test_login_and_signup_pages_render_only_a_safe_next(client: httpx.AsyncClient) -> None:
    for page, form in (("/login", "login"), ("/signup", "signup"), ("/wallet", "topup")):
        r = await client.get(f"{page}?next={quote('/missions/7?lang=en', safe='')}")
        assert r.status_code == 200
        assert _next_of(r.text, form) == "/missions/7?lang=en"
        for bad in ("//evil.example", "https://evil.example/", "/\\evil.example"):
            r = await client.get(f"{page}?next={quote(bad, safe='')}")
            assert _next_of(r.text, form) == "", (page, bad)
    # The login page's link to signup carries it on, and back.
    r = await client.get("/login?next=%2Fmissions%2F7")
    assert 'href="/signup?next=/missions/7"' in r.text
    r = await client.get("/signup?next=%2Fmissions%2F7")
    assert 'href="/login?next=/missions/7"' in r.text
