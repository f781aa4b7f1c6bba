"""channels.intro and channels.link: a streamer's public profile; directory search by name

Revision ID: 0012
Revises: 0013

``intro`` (at most 500 characters, empty by default) and ``link`` (one https address of
the streamer's SOOP, CHZZK or YouTube channel, or NULL) are checked by the code
(``domain/profile.py``); the checks here are the backstop. On PostgreSQL a trigram index
on ``members.display_name`` serves the directory's ``ILIKE '%…%'`` search in any script,
as the board's indexes do (``0002``); SQLite scans.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('channels') as batch:
        batch.add_column(sa.Column('intro', sa.Text(), server_default=sa.text("''"),
                                   nullable=False))
        batch.add_column(sa.Column('link', sa.String(length=300), nullable=True))
        batch.create_check_constraint(op.f('ck_channels_intro_length'),
                                      'length(intro) <= 500')
        batch.create_check_constraint(
            op.f('ck_channels_link_https'),
            "link IS NULL OR (link LIKE 'https://%' AND length(link) <= 300)")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_members_display_name_trgm ON members '
                   'USING gin (display_name gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_members_display_name_trgm')
    with op.batch_alter_table('channels') as batch:
        batch.drop_constraint(op.f('ck_channels_link_https'), type_='check')
        batch.drop_constraint(op.f('ck_channels_intro_length'), type_='check')
        batch.drop_column('link')
        batch.drop_column('intro')
