"""Fan board tables (core database): posts and comments per streamer channel.

Author and streamer ids refer to the identity database (no foreign keys across the two).
Search on PostgreSQL uses ``pg_trgm`` GIN indexes on ``posts.title``, ``posts.body`` and
``comments.body``; they exist only in migrations 0002 and 0010 (see
``migrations/env_common.py::UNMANAGED_INDEXES``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
)

from missionlink.adapters.db.core_tables import core_metadata
from missionlink.adapters.db.types import BigId, UTCDateTime

posts = Table(
    "posts",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("streamer_id", BigInteger, nullable=False),
    Column("author_id", BigInteger, nullable=False),
    Column("mission_id", BigInteger, nullable=True, unique=True),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
    CheckConstraint("length(title) BETWEEN 1 AND 200", name="title_length"),
    CheckConstraint("length(body) BETWEEN 1 AND 20000", name="body_length"),
)
# Newest-first pages of one channel walk this index backwards.
Index("ix_posts_streamer_id", posts.c.streamer_id, posts.c.id)

comments = Table(
    "comments",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("post_id", BigInteger, ForeignKey("posts.id"), nullable=False),
    Column("author_id", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("edited_at", UTCDateTime, nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
    CheckConstraint("length(body) BETWEEN 1 AND 2000", name="body_length"),
    CheckConstraint("edited_at IS NULL OR edited_at >= created_at", name="edited_after_created"),
)
Index("ix_comments_post_id", comments.c.post_id, comments.c.id)
