"""pledges carry an optional message, may be anonymous, and a streamer may hide a message

Revision ID: 0013
Revises: 0007

- ``pledges.message``: the backer's words with the pledge (at most 100 characters, the
  blocked words already masked), NULL without one;
- ``pledges.anonymous``: shown without the backer's name or id wherever the public sees it;
- ``pledges.message_hidden_at``: when the mission's streamer hid the message (NULL: shown).

``missionlink_place_pledges`` (0006) is recreated with two more parameters,
``p_messages text[] DEFAULT NULL`` and ``p_anonymous boolean[] DEFAULT NULL`` (one per
pledge, in the arrays' order): it stores them, and puts them in the ``pledge.created``
event and in the stored response. A call with 0006's arguments still works.
"""
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any, Sequence, Union

from alembic import op
import sqlalchemy as sa
import missionlink.adapters.db.types

revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_EDITS = (
    ("    p_created_status integer, p_request_ids text[] DEFAULT NULL\n) RETURNS TABLE",
     "    p_created_status integer, p_request_ids text[] DEFAULT NULL,\n"
     "    p_messages text[] DEFAULT NULL, p_anonymous boolean[] DEFAULT NULL\n) RETURNS TABLE"),
    ("INSERT INTO pledges AS p (mission_id, user_id, amount, created_at)\n"
     "                     VALUES (p_missions[i], p_users[i], p_amounts[i], p_nows[i])",
     "INSERT INTO pledges AS p (mission_id, user_id, amount, created_at, message, anonymous)\n"
     "                     VALUES (p_missions[i], p_users[i], p_amounts[i], p_nows[i],\n"
     "                             p_messages[i], coalesce(p_anonymous[i], false))"),
    ("'amount', r.amount, 'total_pledged', r.total),",
     "'amount', r.amount, 'total_pledged', r.total,\n"
     "                                       'message', p_messages[r.i],\n"
     "                                       'anonymous', coalesce(p_anonymous[r.i], false)),"),
    ("'created_at', p_created_ats[r.i]);",
     "'created_at', p_created_ats[r.i],\n"
     "                                      'message', p_messages[r.i],\n"
     "                                      'anonymous', coalesce(p_anonymous[r.i], false));"),
)


def function_sql() -> str:
    """0006's function with the messages added (each edit must apply exactly once)."""
    sql: str = _previous().function_sql()
    for old, new in _EDITS:
        assert sql.count(old) == 1, old
        sql = sql.replace(old, new)
    return sql


def signature() -> str:
    previous: str = _previous().signature()
    return previous[:-1] + ", text[], boolean[])"


def upgrade() -> None:
    with op.batch_alter_table('pledges') as batch:
        batch.add_column(sa.Column('message', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('anonymous', sa.Boolean(), nullable=False,
                                   server_default=sa.text('false')))
        batch.add_column(sa.Column(
            'message_hidden_at', missionlink.adapters.db.types.UTCDateTime(timezone=True),
            nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {_previous().signature()}")
        op.get_bind().exec_driver_sql(function_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {signature()}")
        op.get_bind().exec_driver_sql(_previous().function_sql())
    with op.batch_alter_table('pledges') as batch:
        batch.drop_column('message_hidden_at')
        batch.drop_column('anonymous')
        batch.drop_column('message')


def _previous() -> Any:
    """0006's module, read from its own (frozen) file rather than copied here."""
    path = Path(__file__).with_name("0006_outbox_request_id.py")
    spec = spec_from_file_location("missionlink_migration_0006", path)
    assert spec is not None
    assert spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
