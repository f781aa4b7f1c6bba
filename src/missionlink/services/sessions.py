"""Sessions: refresh-token families, their rotation and reuse detection, and logout.

A session is a family of refresh tokens; ending it ends every access token issued in it."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.identity_tables import refresh_tokens, users
from missionlink.domain.errors import NotAuthenticated

if TYPE_CHECKING:
    from missionlink.services.identity import Accounts

BAD_REFRESH = "the refresh token is unknown, expired, spent or revoked"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def issue_pair(
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
                return await issue_pair(
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
