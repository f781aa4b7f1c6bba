"""Identity database: users, credentials and refresh tokens (kept apart from the core)."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from missionlink.adapters.db.types import BigId, UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

identity_metadata = MetaData(naming_convention=NAMING)

users = Table(
    "users",
    identity_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    Column("email_normalized", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("display_name", String(50), nullable=False),
    Column("role", String(16), nullable=False),
    Column("language", String(2), nullable=False, server_default="ko"),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("role IN ('viewer', 'streamer', 'admin')", name="role"),
    CheckConstraint("language IN ('ko', 'en')", name="language"),
)

refresh_tokens = Table(
    "refresh_tokens",
    identity_metadata,
    Column("id", String(36), primary_key=True),
    Column("family_id", String(36), nullable=False, index=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("spent_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)
Index("ix_refresh_tokens_user", refresh_tokens.c.user_id)
