"""outbox events name the request that wrote them

Revision ID: 0006
Revises: 0005

A nullable ``outbox.request_id``: the ``X-Request-Id`` of the request whose transaction
wrote the event (NULL for events the worker wrote on its own, e.g. an expiry). The worker
binds it to its log lines while it handles the event, so settlement, broadcast and the
events a handler writes in turn name the request that caused them. A column rather than a
payload key: payloads are the events' contract and reach overlays as they are.

``missionlink_place_pledges`` (0005) writes its ``pledge.created`` events itself; it is
recreated with one more parameter, ``p_request_ids text[] DEFAULT NULL`` (one per pledge,
in the arrays' order), so a call that passes 0005's nineteen arguments still works and
leaves the column NULL.
"""
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any, Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_EDITS = (
    ("    p_created_status integer\n) RETURNS TABLE",
     "    p_created_status integer, p_request_ids text[] DEFAULT NULL\n) RETURNS TABLE"),
    ("INSERT INTO outbox (topic, payload, created_at, available_at)",
     "INSERT INTO outbox (topic, payload, created_at, available_at, request_id)"),
    ("p_nows[r.i], p_nows[r.i]);", "p_nows[r.i], p_nows[r.i], p_request_ids[r.i]);"),
)


def function_sql() -> str:
    """0005's function with the request ids added (each edit must apply exactly once)."""
    sql: str = _previous().FUNCTION
    for old, new in _EDITS:
        assert sql.count(old) == 1, old
        sql = sql.replace(old, new)
    return sql


def signature() -> str:
    previous: str = _previous().SIGNATURE
    return previous[:-1] + ", text[])"


def upgrade() -> None:
    op.add_column('outbox', sa.Column('request_id', sa.String(length=128), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {_previous().SIGNATURE}")
        op.get_bind().exec_driver_sql(function_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {signature()}")
        op.get_bind().exec_driver_sql(_previous().FUNCTION)
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('request_id')


def _previous() -> Any:
    """0005's module, read from its own (frozen) file rather than copied here."""
    path = Path(__file__).with_name("0005_place_pledges_in_batches.py")
    spec = spec_from_file_location("missionlink_migration_0005", path)
    assert spec is not None
    assert spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
