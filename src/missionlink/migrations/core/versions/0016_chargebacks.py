"""chargebacks: disputed top-ups taken back, debt in a receivable, no pledge while in debt

Revision ID: 0016
Revises: 0017

- ``chargebacks``: one row per provider dispute (Stripe's dispute id, PortOne's
  ``{paymentId}:{cancellationId}``, unique) on a top-up, with its amount (positive) and
  its state as the provider reports it (``opened``, ``lost``, ``won``);
- ``wallets.debt``: what a chargeback took back beyond the wallet's cash (never negative),
  held in the user's receivable account.

``missionlink_place_pledges`` (0013) is recreated with the same signature: the wallet debit
also requires ``debt = 0``, and a pledge refused by a wallet in debt comes back as the
outcome ``'debt'`` with the debt in ``body``, so the desk tells it from insufficient funds.
"""
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any, Sequence, Union

from alembic import op
import sqlalchemy as sa
import missionlink.adapters.db.types

revision: str = '0016'
down_revision: Union[str, Sequence[str], None] = '0017'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_EDITS = (
    ("WHERE w.user_id = p_users[i] AND w.cash_balance >= p_amounts[i];\n"
     "                    IF NOT FOUND THEN\n"
     "                        outcome := 'funds';\n"
     "                    END IF;",
     "WHERE w.user_id = p_users[i] AND w.cash_balance >= p_amounts[i]\n"
     "                       AND w.debt = 0;\n"
     "                    IF NOT FOUND THEN\n"
     "                        SELECT w.debt::text INTO body FROM wallets w\n"
     "                         WHERE w.user_id = p_users[i] AND w.debt > 0;\n"
     "                        outcome := CASE WHEN FOUND THEN 'debt' ELSE 'funds' END;\n"
     "                    END IF;"),
)


def function_sql() -> str:
    """0013's function with the debt condition added (each edit must apply exactly once)."""
    sql: str = _previous().function_sql()
    for old, new in _EDITS:
        assert sql.count(old) == 1, old
        sql = sql.replace(old, new)
    return sql


def signature() -> str:
    signature: str = _previous().signature()
    return signature


def upgrade() -> None:
    with op.batch_alter_table('wallets') as batch:
        batch.add_column(sa.Column('debt', sa.BigInteger(), nullable=False,
                                   server_default=sa.text('0')))
        batch.create_check_constraint(op.f('ck_wallets_debt_not_negative'), 'debt >= 0')
    op.create_table(
        'chargebacks',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('topup_id', sa.BigInteger(), nullable=False),
        sa.Column('provider_dispute_id', sa.String(length=160), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=True),
        sa.Column('created_at', missionlink.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column('updated_at', missionlink.adapters.db.types.UTCDateTime(timezone=True),
                  nullable=False),
        sa.CheckConstraint('amount > 0', name=op.f('ck_chargebacks_amount_positive')),
        sa.CheckConstraint("state IN ('opened', 'lost', 'won')",
                           name=op.f('ck_chargebacks_state')),
        sa.ForeignKeyConstraint(['topup_id'], ['topups.id'],
                                name=op.f('fk_chargebacks_topup_id_topups')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chargebacks')),
        sa.UniqueConstraint('provider_dispute_id',
                            name=op.f('uq_chargebacks_provider_dispute_id')),
    )
    op.create_index(op.f('ix_chargebacks_topup_id'), 'chargebacks', ['topup_id'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {_previous().signature()}")
        op.get_bind().exec_driver_sql(function_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {signature()}")
        op.get_bind().exec_driver_sql(_previous().function_sql())
    op.drop_index(op.f('ix_chargebacks_topup_id'), table_name='chargebacks')
    op.drop_table('chargebacks')
    with op.batch_alter_table('wallets') as batch:
        batch.drop_constraint(op.f('ck_wallets_debt_not_negative'), type_='check')
        batch.drop_column('debt')


def _previous() -> Any:
    """0013's module, read from its own (frozen) file rather than copied here."""
    path = Path(__file__).with_name("0013_pledge_messages.py")
    spec = spec_from_file_location("missionlink_migration_0013", path)
    assert spec is not None
    assert spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
