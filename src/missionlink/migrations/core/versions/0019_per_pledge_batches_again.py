"""Place a batch of pledges one pledge at a time again (0016's body, without 0018's set pass)

Revision ID: 0019
Revises: 0018

``missionlink_place_pledges`` goes back to the body of 0016: every pledge of a batch in
its own ``BEGIN ... EXCEPTION`` block, one call and one commit for the batch as before,
with 0016's debt rule. Kept from 0018: the batch first locks its missions in id order,
before any wallet (one statement). The set pass of 0018 cost PostgreSQL more per pledge than that
body, measured alternately on one idle machine (``bench/pledges.py --client raw --workers
1``): 0.46-0.47 ms of PostgreSQL CPU a pledge spread over missions and 0.75-0.76 ms on
one hot mission, against 0.24-0.28 ms for both with the per-pledge body; its fixed
number of statements does not pay for itself at the batch sizes a server gathers
(bench/README.md). Same signature and outcomes; downgrade restores 0018's body.
"""
from typing import Sequence, Union

from alembic import op

from missionlink.migrations.earlier import core_revision as _migration

revision: str = '0019'
down_revision: Union[str, Sequence[str], None] = '0018'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# Before its first pledge the batch locks every mission it names, in id order, the way
# settlement's order (a mission, then wallets) needs: a batch that has to wait for a
# mission waits before it holds any wallet, so the two never wait on each other in a
# cycle. Should that statement fail (a lock timeout), each pledge meets the same lock in
# its own block and is failed alone, as before.
_EDITS = (
    ("BEGIN\n    FOR i IN 1 .. n LOOP\n",
     "BEGIN\n"
     "    BEGIN\n"
     "        PERFORM 1 FROM missions ms WHERE ms.id = ANY (p_missions)\n"
     "         ORDER BY ms.id FOR KEY SHARE;\n"
     "    EXCEPTION WHEN OTHERS THEN\n"
     "        NULL;\n"
     "    END;\n"
     "    FOR i IN 1 .. n LOOP\n"),
)


def function_sql() -> str:
    """0016's function, read from its own file, with the missions locked first."""
    sql = str(_migration("0016_chargebacks").function_sql())
    for old, new in _EDITS:
        assert sql.count(old) == 1, old
        sql = sql.replace(old, new)
    return sql


def signature() -> str:
    return str(_migration("0016_chargebacks").signature())


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {_migration('0018_set_based_pledge_batches').signature()}")
        op.get_bind().exec_driver_sql(function_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {signature()}")
        op.get_bind().exec_driver_sql(_migration('0018_set_based_pledge_batches').function_sql())

