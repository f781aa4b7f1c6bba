"""Identity use cases: signup, login and the caller's profile (sessions: ``sessions.py``)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.engine import Database
from missionlink.adapters.db.identity_tables import users
from missionlink.adapters.security.rate_limit import RateLimiter
from missionlink.adapters.security.revocations import SessionRevocations
from missionlink.adapters.security.tokens import TokenService
from missionlink.domain.clock import Clock
from missionlink.domain.errors import DuplicateEmail, InvalidInput, NotAuthenticated, RateLimited
from missionlink.domain.identity import (
    LANGUAGES,
    PUBLIC_ROLES,
    ROLES,
    check_password,
    clean_display_name,
    encodable,
    login_key,
    normalize_email,
)
from missionlink.services import sessions
from missionlink.services.members import MemberDefaults, member_exists, open_member
from missionlink.services.sessions import TokenPair

SIGNUP_WINDOW_SECONDS = 60
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
#: One address may fail more often than one account: several people can share a NAT.
ADDRESS_FAILURE_FACTOR = 4
#: The first progressive login delay; each further failure on the account doubles it.
LOGIN_DELAY_BASE_SECONDS = 1
BAD_CREDENTIALS = "wrong email or password"


@dataclass(frozen=True)
class Accounts:
    """What the identity use cases work with, wired in ``bootstrap``: the identity database
    (users, sessions), the core one (a user's member records), the account ports and limits."""

    identity_db: Database
    core_db: Database
    passwords: PasswordHasher
    tokens: TokenService
    sessions: SessionRevocations
    limiter: RateLimiter
    clock: Clock
    members: MemberDefaults
    signups_per_minute: int
    #: Failed logins per account in the window before the progressive delay (0: no limit).
    login_failures: int
    login_max_delay_seconds: int
    refresh_token_seconds: int
    access_token_seconds: int


@dataclass(frozen=True)
class UserView:
    id: int
    email: str
    display_name: str
    role: str
    language: str


_dummy_hashes: dict[tuple[int, int, int, int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash with the live parameters, verified for unknown emails so timing matches."""
    key = (
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
        hasher.hash_len,
        hasher.salt_len,
    )
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hashes[key]


def _verify(hasher: PasswordHasher, stored: str | None, password: str) -> bool:
    """Runs one argon2 verification whatever the input, so failures cost the same time."""
    usable = encodable(password)
    try:
        ok = hasher.verify(stored or _dummy_hash(hasher), password if usable else "-")
    except (VerificationError, InvalidHashError):
        return False
    return ok and usable and stored is not None


def _view(row: Any) -> UserView:
    return UserView(row.id, row.email, row.display_name, row.role, row.language)


async def signup(
    a: Accounts,
    *,
    email: str,
    password: str,
    display_name: str,
    role: str,
    language: str = "ko",
    client: str,
) -> UserView:
    """Register a viewer or streamer; signups are rate limited per client address."""
    await a.limiter.hit(
        f"signup:{client}",
        limit=a.signups_per_minute,
        window=SIGNUP_WINDOW_SECONDS,
        what="signups from this address",
    )
    if role not in PUBLIC_ROLES:
        raise InvalidInput.of("role", "not-allowed", "must be 'viewer' or 'streamer'",
                              allowed=sorted(PUBLIC_ROLES))
    return await register(
        a, email=email, password=password, display_name=display_name, role=role, language=language
    )


async def register(
    a: Accounts, *, email: str, password: str, display_name: str, role: str, language: str
) -> UserView:
    """Create the user in the identity database, then their member records in the core."""
    stored, key = normalize_email(email)
    check_password(password)
    name = clean_display_name(display_name)
    if role not in ROLES:
        raise InvalidInput.of("role", "not-allowed", f"unknown role {role!r}",
                              allowed=sorted(ROLES))
    if language not in LANGUAGES:
        raise InvalidInput.of("language", "not-allowed", "must be 'ko' or 'en'",
                              allowed=sorted(LANGUAGES))
    password_hash = await asyncio.to_thread(a.passwords.hash, password)
    now = a.clock.now()
    values = {
        "email": stored,
        "email_normalized": key,
        "password_hash": password_hash,
        "display_name": name,
        "role": role,
        "language": language,
        "created_at": now,
    }
    try:
        async with a.identity_db.begin() as conn:
            result = await conn.execute(insert(users).values(**values).returning(users.c.id))
            user_id = int(result.scalar_one())
    except IntegrityError as exc:
        raise DuplicateEmail(f"{stored} is already registered") from exc
    await _open_member(a, user_id=user_id, display_name=name, role=role, now=now)
    return UserView(user_id, stored, name, role, language)


async def _open_member(
    a: Accounts, *, user_id: int, display_name: str, role: str, now: datetime
) -> None:
    async def work(conn: AsyncConnection) -> bool:
        return await open_member(
            conn,
            defaults=a.members,
            user_id=user_id,
            display_name=display_name,
            role=role,
            now=now,
        )

    await a.core_db.transaction(work)


async def login(a: Accounts, *, email: str, password: str, client: str) -> TokenPair:
    """Check the credentials and open a new session (a new refresh-token family).

    Failures are counted per account, per address and per (account, address), so that a
    stranger's failures never lock the owner out: an address that has not failed on the
    account always has its password checked. Only addresses that failed on it wait for
    the account's progressive delay, and they wait before their password is checked, so
    a 429 says nothing about the password.
    """
    limit = a.login_failures
    if limit <= 0:
        return await _check_credentials(a, email=email, password=password)
    key = login_key(email)
    account = key or email.strip().lower()[:320]
    window = LOGIN_FAILURE_WINDOW_SECONDS
    by_account = f"login-fail:account:{account}"
    by_address = f"login-fail:address:{client}"
    # Length-prefixed: neither an email nor an IPv6 address can forge another pair's key.
    by_pair = f"login-fail:pair:{len(client)}:{client}:{account}"
    wait = await a.limiter.retry_after(
        by_address, limit=limit * ADDRESS_FAILURE_FACTOR, window=window
    )
    if wait is not None:
        raise RateLimited(
            f"too many failed logins from this address; retry in {wait} s", retry_after=wait,
            limit="login",
        )
    failed_here = await a.limiter.count(by_pair, window=window) > 0
    # Counted before the check, so parallel tries cannot all slip under the budget; a
    # success clears it again.
    await a.limiter.hit(
        by_pair, limit=limit, window=window, what="failed logins on this account from here"
    )
    if failed_here:
        wait = await a.limiter.pace(
            by_account,
            after=limit,
            window=window,
            base=LOGIN_DELAY_BASE_SECONDS,
            cap=a.login_max_delay_seconds,
        )
        if wait is not None:
            raise RateLimited(
                f"too many failed logins on this account; retry in {wait} s", retry_after=wait,
                limit="login",
            )
    try:
        pair = await _check_credentials(a, email=email, password=password)
    except NotAuthenticated:
        await a.limiter.record(by_address, window=window)
        if not failed_here:  # ``pace`` counted it already otherwise
            await a.limiter.record(by_account, window=window)
        raise
    await a.limiter.reset(by_pair)
    await a.limiter.reset(by_account)
    return pair


async def _check_credentials(a: Accounts, *, email: str, password: str) -> TokenPair:
    key = login_key(email)
    row = await _find_user(a, key) if key else None
    stored = row.password_hash if row is not None else None
    # Always run argon2, known email or not, so response times don't reveal accounts.
    verified = await asyncio.to_thread(_verify, a.passwords, stored, password)
    if row is None or not verified:
        raise NotAuthenticated(BAD_CREDENTIALS)
    now = a.clock.now()
    await _rehash_if_needed(a, row.id, row.password_hash, password)
    await _repair_member(a, row, now)
    async with a.identity_db.begin() as conn:
        return await sessions.issue_pair(a, conn, user_id=row.id, role=row.role, family_id=None,
                                         now=now)


async def _find_user(a: Accounts, key: str) -> Any:
    async with a.identity_db.read() as conn:
        return (await conn.execute(select(users).where(users.c.email_normalized == key))).first()


async def _rehash_if_needed(a: Accounts, user_id: int, stored: str, password: str) -> None:
    """Upgrade a hash made with older argon2 parameters while the password is at hand."""
    if not a.passwords.check_needs_rehash(stored):
        return
    fresh = await asyncio.to_thread(a.passwords.hash, password)
    async with a.identity_db.begin() as conn:
        await conn.execute(update(users).where(users.c.id == user_id).values(password_hash=fresh))


async def _repair_member(a: Accounts, row: Any, now: datetime) -> None:
    """Create the core records if a crash came between the two databases at signup."""
    async with a.core_db.read() as conn:
        if await member_exists(conn, row.id):
            return
    await _open_member(a, user_id=row.id, display_name=row.display_name, role=row.role, now=now)


async def profile(a: Accounts, *, user_id: int) -> UserView:
    """The caller's account; 401 when the token outlived the account."""
    async with a.identity_db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    if row is None:
        raise NotAuthenticated("the account of this token no longer exists")
    return _view(row)
