"""missions.result_by: until when the result of an accepted mission may be declared

Revision ID: 0007
Revises: 0006

``result_by`` is fixed at creation, like ``deadline_at`` and ``fee_bps``: the deadline
plus ``RESULT_GRACE_SECONDS`` in force then, so a later change of the setting never moves
a time a streamer has already been shown. NULL means no grace period (read as
``deadline_at``): missions created before this revision were promised none, and a row
written by a tool that does not know the column (the benchmarks' seeds) still means what
it meant. A check keeps it at or after the deadline (the expiry scan relies on it).

``missionlink_place_pledges`` is unchanged: pledges still close at the deadline.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import missionlink.adapters.db.types

revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('missions') as batch:
        batch.add_column(sa.Column(
            'result_by', missionlink.adapters.db.types.UTCDateTime(timezone=True),
            nullable=True))
        batch.create_check_constraint(
            op.f('ck_missions_result_by_after_deadline'),
            'result_by IS NULL OR result_by >= deadline_at')


def downgrade() -> None:
    with op.batch_alter_table('missions') as batch:
        batch.drop_constraint(op.f('ck_missions_result_by_after_deadline'), type_='check')
        batch.drop_column('result_by')
