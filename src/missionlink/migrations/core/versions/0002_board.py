"""fan board: posts and comments, trigram search indexes on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import missionlink.adapters.db.types


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('posts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('streamer_id', sa.BigInteger(), nullable=False),
    sa.Column('author_id', sa.BigInteger(), nullable=False),
    sa.Column('mission_id', sa.BigInteger(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', missionlink.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', missionlink.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', missionlink.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('length(title) BETWEEN 1 AND 200', name=op.f('ck_posts_title_length')),
    sa.CheckConstraint('length(body) BETWEEN 1 AND 20000', name=op.f('ck_posts_body_length')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts')),
    sa.UniqueConstraint('mission_id', name=op.f('uq_posts_mission_id'))
    )
    op.create_index('ix_posts_streamer_id', 'posts', ['streamer_id', 'id'], unique=False)
    op.create_table('comments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('post_id', sa.BigInteger(), nullable=False),
    sa.Column('author_id', sa.BigInteger(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', missionlink.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', missionlink.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('length(body) BETWEEN 1 AND 2000', name=op.f('ck_comments_body_length')),
    sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_comments_post_id_posts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments'))
    )
    op.create_index('ix_comments_post_id', 'comments', ['post_id', 'id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # Trigram indexes serve ILIKE '%...%' for any script, Korean included; stemmed
        # full-text search finds little in Korean. SQLite scans with LIKE instead.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_posts_title_trgm ON posts USING gin (title gin_trgm_ops)')
        op.execute('CREATE INDEX ix_posts_body_trgm ON posts USING gin (body gin_trgm_ops)')


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_posts_body_trgm')
        op.execute('DROP INDEX IF EXISTS ix_posts_title_trgm')
    op.drop_index('ix_comments_post_id', table_name='comments')
    op.drop_table('comments')
    op.drop_index('ix_posts_streamer_id', table_name='posts')
    op.drop_table('posts')
