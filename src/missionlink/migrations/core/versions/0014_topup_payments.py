"""topups: real payment providers (currency, outcome, virtual accounts, more states)

Revision ID: 0014
Revises: 0012

PortOne and Stripe top-ups are created pending and confirmed by fetching the payment from
the provider. A top-up now remembers the currency the server asked for (KRW only, checked),
why it ended without money (``failure_reason``), what the provider reported when that did
not match (``reported_amount``, ``reported_currency``), and the virtual account a bank
deposit goes to (``virtual_account``, ``deposit_due_at``). The states grow from
pending/completed/failed to pending, awaiting_deposit, completed, failed, cancelled and
rejected. ``(user_id, created_at)`` is indexed for the daily top-up limit.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import missionlink.adapters.db.types

revision: str = '0014'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

NEW_STATUSES = ("status IN ('pending', 'awaiting_deposit', 'completed', 'failed', "
                "'cancelled', 'rejected')")
OLD_STATUSES = "status IN ('pending', 'completed', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table('topups') as batch:
        batch.add_column(sa.Column('currency', sa.String(length=3), nullable=False,
                                   server_default='KRW'))
        batch.add_column(sa.Column('failure_reason', sa.String(length=300), nullable=True))
        batch.add_column(sa.Column('reported_amount', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('reported_currency', sa.String(length=3), nullable=True))
        batch.add_column(sa.Column('virtual_account', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column(
            'deposit_due_at', missionlink.adapters.db.types.UTCDateTime(timezone=True),
            nullable=True))
        batch.drop_constraint(op.f('ck_topups_status'), type_='check')
        batch.create_check_constraint(op.f('ck_topups_status'), NEW_STATUSES)
        batch.create_check_constraint(op.f('ck_topups_currency_krw'), "currency = 'KRW'")
        batch.create_index('ix_topups_user_created', ['user_id', 'created_at'])


def downgrade() -> None:
    with op.batch_alter_table('topups') as batch:
        batch.drop_index('ix_topups_user_created')
        batch.drop_constraint(op.f('ck_topups_currency_krw'), type_='check')
        batch.drop_constraint(op.f('ck_topups_status'), type_='check')
        batch.create_check_constraint(op.f('ck_topups_status'), OLD_STATUSES)
        batch.drop_column('deposit_due_at')
        batch.drop_column('virtual_account')
        batch.drop_column('reported_currency')
        batch.drop_column('reported_amount')
        batch.drop_column('failure_reason')
        batch.drop_column('currency')
