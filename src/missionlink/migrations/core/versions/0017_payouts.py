"""payouts: streamers' sealed bank accounts, withdrawals and bank transfer batches

Revision ID: 0017
Revises: 0015

- ``payout_accounts``: one per streamer; the account number and holder sealed by the
  vault (``sealed``, under ``key_id``), the bank code and last four digits readable;
- ``payout_batches``: a bank transfer file an admin exported;
- ``withdrawals``: gross, income tax, local income tax and net (which must add up), the
  state (requested, exported, paid, failed, with a reason when failed), a sealed copy of
  the account, the batch it went out in; ``UNIQUE (user_id, idempotency_key)``.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import missionlink.adapters.db.types

revision: str = '0017'
down_revision: Union[str, Sequence[str], None] = '0015'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STATES = "state IN ('requested', 'exported', 'paid', 'failed')"
UTC = missionlink.adapters.db.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'payout_accounts',
        sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('bank_code', sa.String(length=3), nullable=False),
        sa.Column('account_last4', sa.String(length=4), nullable=False),
        sa.Column('sealed', sa.String(length=1000), nullable=False),
        sa.Column('key_id', sa.String(length=32), nullable=False),
        sa.Column('updated_at', UTC(timezone=True), nullable=False),
        sa.CheckConstraint('length(bank_code) = 3', name=op.f('ck_payout_accounts_bank_code')),
        sa.CheckConstraint('length(account_last4) = 4', name=op.f('ck_payout_accounts_last4')),
        sa.CheckConstraint("key_id <> ''", name=op.f('ck_payout_accounts_key_id')),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_payout_accounts')),
    )
    op.create_table(
        'payout_batches',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('created_by', sa.BigInteger(), nullable=False),
        sa.Column('created_at', UTC(timezone=True), nullable=False),
        sa.Column('lines', sa.Integer(), nullable=False),
        sa.Column('total_net', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('lines > 0 AND total_net > 0',
                           name=op.f('ck_payout_batches_not_empty')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_batches')),
    )
    op.create_table(
        'withdrawals',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('user_id', sa.BigInteger(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=255), nullable=False),
        sa.Column('gross', sa.BigInteger(), nullable=False),
        sa.Column('income_tax', sa.BigInteger(), nullable=False),
        sa.Column('local_tax', sa.BigInteger(), nullable=False),
        sa.Column('net', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('bank_code', sa.String(length=3), nullable=False),
        sa.Column('account_last4', sa.String(length=4), nullable=False),
        sa.Column('sealed', sa.String(length=1000), nullable=False),
        sa.Column('key_id', sa.String(length=32), nullable=False),
        sa.Column('batch_id', sa.BigInteger(), nullable=True),
        sa.Column('failure_reason', sa.String(length=300), nullable=True),
        sa.Column('created_at', UTC(timezone=True), nullable=False),
        sa.Column('exported_at', UTC(timezone=True), nullable=True),
        sa.Column('completed_at', UTC(timezone=True), nullable=True),
        sa.CheckConstraint('gross > 0 AND net > 0 AND income_tax >= 0 AND local_tax >= 0',
                           name=op.f('ck_withdrawals_amounts_positive')),
        sa.CheckConstraint('net + income_tax + local_tax = gross',
                           name=op.f('ck_withdrawals_amounts_add_up')),
        sa.CheckConstraint(STATES, name=op.f('ck_withdrawals_state')),
        sa.CheckConstraint("(state = 'failed' AND failure_reason IS NOT NULL) OR "
                           "(state <> 'failed' AND failure_reason IS NULL)",
                           name=op.f('ck_withdrawals_failure_reason')),
        sa.CheckConstraint("state NOT IN ('exported', 'paid') OR batch_id IS NOT NULL",
                           name=op.f('ck_withdrawals_exported_in_batch')),
        sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'],
                                name=op.f('fk_withdrawals_batch_id_payout_batches')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_withdrawals')),
        sa.UniqueConstraint('user_id', 'idempotency_key',
                            name=op.f('uq_withdrawals_user_id_idempotency_key')),
    )
    op.create_index('ix_withdrawals_user_created', 'withdrawals', ['user_id', 'created_at'])
    op.create_index('ix_withdrawals_state', 'withdrawals', ['state'])
    op.create_index('ix_withdrawals_batch', 'withdrawals', ['batch_id'])


def downgrade() -> None:
    op.drop_index('ix_withdrawals_batch', table_name='withdrawals')
    op.drop_index('ix_withdrawals_state', table_name='withdrawals')
    op.drop_index('ix_withdrawals_user_created', table_name='withdrawals')
    op.drop_table('withdrawals')
    op.drop_table('payout_batches')
    op.drop_table('payout_accounts')
