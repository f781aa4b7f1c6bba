"""The profile rules alone: which channel links are kept, and how they are stored."""

from __future__ import annotations

import pytest

from missionlink.domain.errors import InvalidInput
from missionlink.domain.profile import (
    PLATFORM_HOSTS,
    PLATFORMS,
    check_intro,
    check_link,
    check_name_search,
    platform_of,
)


@pytest.mark.parametrize(("given", "stored", "platform"), [
    ("HTTPS://WWW.YouTube.com/@Ramen", "https://www.youtube.com/@Ramen", "youtube"),
    ("  https://youtu.be/AbC?t=1#x  ", "https://youtu.be/AbC?t=1#x", "youtube"),
    ("https://ch.sooplive.co.kr/ramenking", "https://ch.sooplive.co.kr/ramenking", "soop"),
    ("https://bj.afreecatv.com/ramenking", "https://bj.afreecatv.com/ramenking", "soop"),
    ("https://chzzk.naver.com/live/0a1b2c", "https://chzzk.naver.com/live/0a1b2c", "chzzk"),
    ("https://www.youtube.com/%EB%9D%BC%EB%A9%B4", "https://www.youtube.com/%EB%9D%BC%EB%A9%B4",
     "youtube"),
])
def test_a_channel_link_is_stored_with_scheme_and_host_in_lower_case(
    given: str, stored: str, platform: str
) -> None:
    link = check_link(given)
    assert link is not None and (link.url, link.platform) == (stored, platform)
    assert platform_of(link.url) == platform


def test_an_empty_link_means_no_link() -> None:
    assert check_link("") is None and check_link("   ") is None
    assert platform_of(None) is None and platform_of("") is None


@pytest.mark.parametrize("link", ["https://chzzk.naver.com.", "https://chzzk.naver.com./x",
                                  "https://CHZZK.naver.com:443/x", "https://[::1]/x",
                                  "https://xn--chzzk-9ta.naver.com/x", "https:/chzzk.naver.com/x"])
def test_hosts_that_only_look_like_a_platform_are_refused(link: str) -> None:
    with pytest.raises(InvalidInput, match=r"^link: "):
        check_link(link)


def test_every_host_belongs_to_a_known_platform() -> None:
    assert set(PLATFORM_HOSTS.values()) == set(PLATFORMS)
    assert all(host == host.lower() and host.strip(".") == host for host in PLATFORM_HOSTS)


def test_the_intro_and_the_search_follow_the_text_policy() -> None:
    assert check_intro("  \n안녕하세요\n반가워요 \n") == "안녕하세요\n반가워요"
    assert check_intro("\u200b \u3164") == ""
    with pytest.raises(InvalidInput, match=r"^intro: "):
        check_intro("a\x07")
    assert check_name_search("  라면 ") == "라면" and check_name_search("   ") is None
    with pytest.raises(InvalidInput, match=r"^q: "):
        check_name_search("a" * 51)
