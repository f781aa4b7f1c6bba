"""fan board: comment edits (comments.edited_at), comment search index on PostgreSQL

Revision ID: 0010
Revises: 0014

``edited_at`` is NULL until the author first changes the comment's text; a check keeps it
at or after ``created_at``. A board search also matches posts whose live comments contain
the text: on PostgreSQL a ``pg_trgm`` GIN index on ``comments.body`` serves it, as the
indexes of migration 0002 serve titles and bodies (SQLite scans with ``LIKE``).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import missionlink.adapters.db.types

revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('comments') as batch:
        batch.add_column(sa.Column(
            'edited_at', missionlink.adapters.db.types.UTCDateTime(timezone=True),
            nullable=True))
        batch.create_check_constraint(
            op.f('ck_comments_edited_after_created'),
            'edited_at IS NULL OR edited_at >= created_at')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_comments_body_trgm ON comments '
                   'USING gin (body gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_comments_body_trgm')
    with op.batch_alter_table('comments') as batch:
        batch.drop_constraint(op.f('ck_comments_edited_after_created'), type_='check')
        batch.drop_column('edited_at')
