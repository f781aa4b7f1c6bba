"""topup_refunds: refunds of top-ups to the original payment method

Revision ID: 0015
Revises: 0011

A refund holds the user's cash first (pending), then the provider is asked to give it
back; it ends succeeded or failed (reversed). Amounts are positive, the provider's refund
id is unique when known, the idempotency key is unique per user, and a top-up has at most
one pending refund at a time.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import missionlink.adapters.db.types

revision: str = '0015'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UTC = missionlink.adapters.db.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'topup_refunds',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('topup_id', BigId, nullable=False),
        sa.Column('user_id', sa.BigInteger(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('provider_refund_id', sa.String(length=128), nullable=True),
        sa.Column('idempotency_key', sa.String(length=255), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=True),
        sa.Column('failure_reason', sa.String(length=300), nullable=True),
        sa.Column('created_at', UTC(timezone=True), nullable=False),
        sa.Column('updated_at', UTC(timezone=True), nullable=False),
        sa.Column('settled_at', UTC(timezone=True), nullable=True),
        sa.CheckConstraint('amount > 0', name=op.f('ck_topup_refunds_amount_positive')),
        sa.CheckConstraint("state IN ('pending', 'succeeded', 'failed')",
                           name=op.f('ck_topup_refunds_state')),
        sa.ForeignKeyConstraint(['topup_id'], ['topups.id'],
                                name=op.f('fk_topup_refunds_topup_id_topups')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_topup_refunds')),
        sa.UniqueConstraint('provider_refund_id',
                            name=op.f('uq_topup_refunds_provider_refund_id')),
        sa.UniqueConstraint('user_id', 'idempotency_key',
                            name=op.f('uq_topup_refunds_user_id_idempotency_key')),
    )
    op.create_index('ix_topup_refunds_user_created', 'topup_refunds',
                    ['user_id', 'created_at'])
    op.create_index('ux_topup_refunds_one_pending', 'topup_refunds', ['topup_id'],
                    unique=True, sqlite_where=sa.text("state = 'pending'"),
                    postgresql_where=sa.text("state = 'pending'"))


def downgrade() -> None:
    op.drop_index('ux_topup_refunds_one_pending', table_name='topup_refunds')
    op.drop_index('ix_topup_refunds_user_created', table_name='topup_refunds')
    op.drop_table('topup_refunds')
