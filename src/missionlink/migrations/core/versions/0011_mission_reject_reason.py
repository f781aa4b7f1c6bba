"""missions.reject_reason: what the streamer said when rejecting a mission

Revision ID: 0011
Revises: 0010

Optional (NULL: no reason given, and every mission from before this revision). The
streamer writes it with the reject (at most 200 characters, single-line, the text policy
of ``domain/text.py``); backers read it on the mission page and in their refund email. A
check keeps it on rejected missions only.

``ix_bets_user``: a member's own bets, newest first (``GET /api/v1/me/bets``), as
``ix_pledges_user`` serves their pledges.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('missions') as batch:
        batch.add_column(sa.Column('reject_reason', sa.String(length=200), nullable=True))
        batch.create_check_constraint(
            op.f('ck_missions_reject_reason_when_rejected'),
            "reject_reason IS NULL OR status = 'rejected'")
    op.create_index('ix_bets_user', 'bets', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_bets_user', table_name='bets')
    with op.batch_alter_table('missions') as batch:
        batch.drop_constraint(op.f('ck_missions_reject_reason_when_rejected'), type_='check')
        batch.drop_column('reject_reason')
