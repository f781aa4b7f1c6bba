"""Account rules: which emails, passwords, display names, roles and languages are valid."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from missionlink.domain import text
from missionlink.domain.errors import InvalidInput
from missionlink.domain.text import TextRule

PUBLIC_ROLES = frozenset({"viewer", "streamer"})
ROLES = PUBLIC_ROLES | {"admin"}
LANGUAGES = frozenset({"ko", "en"})
#: Reserved top-level domains (RFC 2606, RFC 6761, RFC 6762) that never receive real mail.
RESERVED_TLDS = frozenset({"test", "example", "invalid", "localhost", "local", "onion", "arpa"})
PASSWORD_MIN, PASSWORD_MAX = 10, 128
DISPLAY_NAME_MAX = 50
EMAIL_MAX = 320


def normalize_email(raw: str) -> tuple[str, str]:
    """The address as stored and its case-insensitive key; InvalidInput when it can't get mail."""
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput.of("email", "invalid-email", str(exc)) from exc
    tld = info.ascii_domain.rsplit(".", 1)[-1].lower()
    if tld in RESERVED_TLDS:
        raise InvalidInput.of("email", "reserved-email-domain",
                              f".{tld} is a reserved domain that cannot receive email", tld=tld)
    return info.normalized, info.normalized.lower()


def login_key(raw: str) -> str | None:
    """The key an address is stored under; None when no account can have it."""
    try:
        return normalize_email(raw)[1]
    except InvalidInput:
        return None


def encodable(text: str) -> bool:
    # JSON may carry lone surrogates that no database or hash function accepts.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_password(password: str) -> None:
    """Passwords are 10 to 128 characters; no composition rules (NIST SP 800-63B)."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        code = "too-short" if len(password) < PASSWORD_MIN else "too-long"
        raise InvalidInput.of("password", code,
                              f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters",
                              min=PASSWORD_MIN, max=PASSWORD_MAX)
    if not encodable(password):
        raise InvalidInput.of("password", "bad-characters",
                              "contains characters that are not valid Unicode")


DISPLAY_NAME = TextRule(DISPLAY_NAME_MAX, name=True)


def clean_display_name(name: str) -> str:
    """The display name as shown (see domain.text): 1 to 50 visible, single-line characters."""
    return text.check("display_name", name, DISPLAY_NAME)
