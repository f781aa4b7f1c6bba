"""Account rules and password checks, without a database."""

from __future__ import annotations

from typing import Literal

import pytest
from argon2 import PasswordHasher

from missionlink.domain.errors import InvalidInput
from missionlink.domain.identity import (
    check_password,
    clean_display_name,
    login_key,
    normalize_email,
)
from missionlink.services.identity import _verify
from missionlink.services.sessions import hash_refresh_token

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def test_email_keeps_its_local_part_and_lowercases_the_key() -> None:
    assert normalize_email("Alice@Example.COM") == ("Alice@example.com", "alice@example.com")


@pytest.mark.parametrize("email", ["a@example.com", "fan@sub.example.com", "팬@예시.kr"])
def test_public_style_domains_are_accepted(email: str) -> None:
    normalize_email(email)


@pytest.mark.parametrize(
    "email",
    [
        "a@x.test",
        "a@printer.local",
        "a@localhost",
        "a@b.invalid",
        "a@b.example",
        "a@example",
        "not-an-email",
        "a@[127.0.0.1]",
        "a\x00@example.com",
        "a\ud800@example.com",
        "",
    ],
)
def test_reserved_or_malformed_emails_are_refused(email: str) -> None:
    with pytest.raises(InvalidInput, match=r"^email: "):
        normalize_email(email)


def test_login_key_matches_the_signup_key_and_is_none_for_garbage() -> None:
    assert login_key(" Alice@EXAMPLE.com ") == normalize_email("alice@example.com")[1]
    assert login_key("nul\x00@example.com") is None


@pytest.mark.parametrize("password", ["x" * 10, "x" * 128, "correct horse", "비밀번호는열글자이상"])
def test_passwords_of_10_to_128_characters_need_no_composition(password: str) -> None:
    check_password(password)


@pytest.mark.parametrize("password", ["x" * 9, "x" * 129, "", "abcdefghi\ud800"])
def test_passwords_outside_the_rules_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput, match=r"^password: "):
        check_password(password)


def test_display_name_is_stripped() -> None:
    assert clean_display_name("  Alice  ") == "Alice"
    assert clean_display_name("가" * 50) == "가" * 50


@pytest.mark.parametrize("name", ["", "   ", "x" * 51, "bad\x00name", "tab\tname", "\ud800"])
def test_empty_long_or_control_display_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match=r"^display_name: "):
        clean_display_name(name)


def test_verify_accepts_only_the_right_password() -> None:
    stored = FAST.hash("correct horse battery")
    assert _verify(FAST, stored, "correct horse battery")
    assert not _verify(FAST, stored, "wrong horse battery")
    assert not _verify(FAST, "not-a-hash", "correct horse battery")
    assert not _verify(FAST, stored, "correct\ud800")


def test_unknown_accounts_still_run_one_verification() -> None:
    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            calls.append("verify")
            return super().verify(hash, password)

    hasher = CountingHasher(time_cost=1, memory_cost=8, parallelism=1)
    assert not _verify(hasher, None, "whatever password")
    assert calls == ["verify"]


def test_refresh_tokens_are_stored_as_sha256_hex() -> None:
    digest = hash_refresh_token("token")
    assert len(digest) == 64
    assert digest == hash_refresh_token("token") != hash_refresh_token("token2")
    hash_refresh_token("\ud800")  # a lone surrogate is hashed, not a crash
