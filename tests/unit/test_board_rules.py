"""Fan board rules without a database: text limits, permissions, search patterns."""

from __future__ import annotations

import pytest

from missionlink.domain import board as rules
from missionlink.domain.errors import Forbidden, InvalidInput

AUTHOR, STREAMER, STRANGER = 1, 2, 3


@pytest.mark.parametrize("actor", [rules.Actor(AUTHOR, "viewer"), rules.Actor(STREAMER, "streamer"),
                                   rules.Actor(STRANGER, "admin")])
def test_the_author_the_channels_streamer_and_admins_may_delete(actor: rules.Actor) -> None:
    rules.check_delete(actor, author_id=AUTHOR, streamer_id=STREAMER)


@pytest.mark.parametrize("actor", [rules.Actor(STRANGER, "viewer"),
                                   rules.Actor(STRANGER, "streamer")])
def test_anyone_else_may_not_delete(actor: rules.Actor) -> None:
    with pytest.raises(Forbidden):
        rules.check_delete(actor, author_id=AUTHOR, streamer_id=STREAMER)


def test_only_the_author_edits_not_even_an_admin() -> None:
    rules.check_edit(rules.Actor(AUTHOR, "viewer"), author_id=AUTHOR)
    for actor in (rules.Actor(STREAMER, "streamer"), rules.Actor(STRANGER, "admin")):
        with pytest.raises(Forbidden):
            rules.check_edit(actor, author_id=AUTHOR)


def test_titles_are_trimmed_and_counted_in_characters() -> None:
    assert rules.check_title("  라면  ") == "라면"
    assert rules.check_title("가" * 200) == "가" * 200
    for bad in ("", "   ", "가" * 201, "a\x00b", "\ud800"):
        with pytest.raises(InvalidInput):
            rules.check_title(bad)


def test_bodies_keep_their_whitespace() -> None:
    assert rules.check_body("  indented\n") == "  indented\n"
    assert rules.check_comment("c" * 2000) == "c" * 2000
    with pytest.raises(InvalidInput):
        rules.check_comment("c" * 2001)


def test_search_text_is_literal() -> None:
    assert rules.like_pattern("100%_a\\b") == "%100\\%\\_a\\\\b%"
    assert rules.check_search("  ") is None and rules.check_search(None) is None
    assert rules.check_search(" 라면 ") == "라면"


def test_result_comments_name_the_outcome_and_total() -> None:
    text = rules.result_comment("failed", 1_234_000)
    assert "실패" in text and "1,234,000" in text
    assert len(rules.result_comment("expired", 10**12)) <= rules.COMMENT_MAX
