"""Identity use cases: signup, login, refresh-token rotation, logout and the caller's profile."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.engine import Database
from missionlink.adapters.db.identity_tables import refresh_tokens, users
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
from missionlink.services.members import MemberDefaults, member_exists, open_member

SIGNUP_WINDOW_SECONDS = 60
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
#: One address may fail more often than one account: several people can share a NAT.
ADDRESS_FAILURE_FACTOR = 4
#: The first progressive login delay; each further failure on the account doubles it.
LOGIN_DELAY_BASE_SECONDS = 1
BAD_CREDENTIALS = "wrong email or password"
BAD_REFRESH = "the refresh token is unknown, expired, spent or revoked"


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


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


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
        raise InvalidInput("role: must be 'viewer' or 'streamer'")
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
        raise InvalidInput(f"role: unknown role {role!r}")
    if language not in LANGUAGES:
        raise InvalidInput("language: must be 'ko' or 'en'")
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
        return await _issue_pair(a, conn, user_id=row.id, role=row.role, family_id=None, now=now)


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


async def _issue_pair(
    a: Accounts,
    conn: AsyncConnection,
    *,
    user_id: int,
    role: str,
    family_id: str | None,
    now: datetime,
) -> TokenPair:
    token = secrets.token_urlsafe(32)
    family_id = family_id or str(uuid.uuid4())
    await conn.execute(
        insert(refresh_tokens).values(
            id=str(uuid.uuid4()),
            family_id=family_id,
            user_id=user_id,
            token_hash=hash_refresh_token(token),
            issued_at=now,
            expires_at=now + timedelta(seconds=a.refresh_token_seconds),
        )
    )
    return TokenPair(
        # The family is the session: ending it ends every access token issued in it.
        access_token=a.tokens.issue(user_id, role, now, session_id=family_id),
        refresh_token=token,
        expires_in=a.access_token_seconds,
    )


async def refresh(a: Accounts, *, refresh_token: str) -> TokenPair:
    """Spend a refresh token for a new pair; a spent one presented again revokes its family."""
    now = a.clock.now()
    digest = hash_refresh_token(refresh_token)
    rt = refresh_tokens
    ended: set[str] = set()
    async with a.identity_db.begin() as conn:
        # One conditional UPDATE: of two concurrent refreshes only one can spend the token.
        spent = await conn.execute(
            update(rt)
            .where(
                rt.c.token_hash == digest,
                rt.c.spent_at.is_(None),
                rt.c.revoked_at.is_(None),
                rt.c.expires_at > now,
            )
            .values(spent_at=now)
            .returning(rt.c.user_id, rt.c.family_id)
        )
        row = spent.first()
        if row is not None:
            role = await conn.scalar(select(users.c.role).where(users.c.id == row.user_id))
            if role is not None:
                return await _issue_pair(
                    a, conn, user_id=row.user_id, role=role, family_id=row.family_id, now=now
                )
        else:
            reused = (rt.c.token_hash == digest) & rt.c.spent_at.is_not(None)
            ended = await _revoke_family(conn, reused, now)
    # After the commit: a replica that hears of it then finds the family revoked too.
    await a.sessions.revoke(ended)
    raise NotAuthenticated(BAD_REFRESH)


async def logout(a: Accounts, *, user_id: int, refresh_token: str) -> None:
    """End the session the refresh token belongs to, if it is the caller's."""
    digest = hash_refresh_token(refresh_token)
    rt = refresh_tokens
    async with a.identity_db.begin() as conn:
        mine = (rt.c.token_hash == digest) & (rt.c.user_id == user_id)
        ended = await _revoke_family(conn, mine, a.clock.now())
    await a.sessions.revoke(ended)


async def _revoke_family(
    conn: AsyncConnection, which: ColumnElement[bool], now: datetime
) -> set[str]:
    """Revoke every token in the family of the token(s) matching ``which``; the families."""
    rt = refresh_tokens
    family = select(rt.c.family_id).where(which).scalar_subquery()
    result = await conn.execute(
        update(rt)
        .where(rt.c.family_id == family, rt.c.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(rt.c.family_id)
    )
    return {str(f) for f in result.scalars()}


async def recent_revocations(a: Accounts) -> list[tuple[str, float]]:
    """Sessions ended within one access-token lifetime, with when their tokens expire.

    Read once when a process starts without a shared store, so that a restart does not
    bring logged-out access tokens back to life.
    """
    ttl = a.access_token_seconds
    since = a.clock.now() - timedelta(seconds=ttl)
    rt = refresh_tokens
    query = (
        select(rt.c.family_id, func.max(rt.c.revoked_at))
        .where(rt.c.revoked_at >= since)
        .group_by(rt.c.family_id)
    )
    async with a.identity_db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [(str(family), ended.timestamp() + ttl) for family, ended in rows]


async def profile(a: Accounts, *, user_id: int) -> UserView:
    """The caller's account; 401 when the token outlived the account."""
    async with a.identity_db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    if row is None:
        raise NotAuthenticated("the account of this token no longer exists")
    return _view(row)
