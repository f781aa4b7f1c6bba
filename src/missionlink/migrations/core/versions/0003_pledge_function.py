"""Pledge in one round trip on PostgreSQL

Revision ID: 0003
Revises: 0002

The hot path of the product, one autocommit statement: refuse a repeated Idempotency-Key,
lock the mission (KEY SHARE), check the rules, debit the wallet conditionally, insert the
pledge, its journal transfer, the sharded total, the outbox event and, last, the
Idempotency-Key with the response (a concurrent duplicate waits on that unique index and
then fails, undoing its whole statement, and replays the first response). The same rules run in Python
(``domain.missions.check_action``) on SQLite; the end-to-end tests run on both.
"""
from typing import Sequence, Union

from alembic import op

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FUNCTION = """
CREATE FUNCTION missionlink_pledge(
    p_mission bigint, p_user bigint, p_amount bigint, p_now timestamptz, p_shards integer,
    p_key text, p_fingerprint text, p_key_expired_before timestamptz, p_created text
) RETURNS TABLE (streamer_id bigint, response json)
LANGUAGE plpgsql AS $$
DECLARE
    m record;
    new_id bigint;
    total bigint;
    body json;
BEGIN
    IF p_key IS NOT NULL THEN
        DELETE FROM idempotency_keys k
         WHERE k.user_id = p_user AND k.key = p_key AND k.created_at <= p_key_expired_before;
        PERFORM 1 FROM idempotency_keys k WHERE k.user_id = p_user AND k.key = p_key;
        IF FOUND THEN
            RAISE EXCEPTION 'Idempotency-Key already used' USING ERRCODE = 'MLDUP';
        END IF;
    END IF;
    SELECT ms.id, ms.streamer_id, ms.status, ms.accept_by, ms.deadline_at INTO m
      FROM missions ms WHERE ms.id = p_mission FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mission % does not exist', p_mission USING ERRCODE = 'ML404';
    END IF;
    IF m.streamer_id = p_user THEN
        RAISE EXCEPTION 'a streamer cannot pledge to or bet on their own channel''s missions'
            USING ERRCODE = 'ML403';
    END IF;
    IF m.status NOT IN ('pending', 'accepted') THEN
        RAISE EXCEPTION 'cannot pledge a mission that is %', m.status USING ERRCODE = 'MLSTA';
    END IF;
    IF p_now >= m.deadline_at OR (m.status = 'pending' AND p_now >= m.accept_by) THEN
        RAISE EXCEPTION 'the mission''s deadline has passed; it has expired'
            USING ERRCODE = 'MLDLP';
    END IF;
    UPDATE wallets SET cash_balance = cash_balance - p_amount
     WHERE user_id = p_user AND cash_balance >= p_amount;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'not enough cash in the wallet for %', p_amount USING ERRCODE = 'MLFND';
    END IF;
    INSERT INTO pledges (mission_id, user_id, amount, created_at)
         VALUES (p_mission, p_user, p_amount, p_now) RETURNING id INTO new_id;
    INSERT INTO transfers (id, kind, currency, from_account, to_account, amount, mission_id,
                           created_at)
         VALUES ('pledge:' || new_id, 'pledge', 'KRW', 'user:' || p_user || ':cash',
                 'mission:' || p_mission || ':escrow', p_amount, p_mission, p_now);
    INSERT INTO mission_totals AS t (mission_id, shard, amount, pledges)
         VALUES (p_mission, new_id % p_shards, p_amount, 1)
    ON CONFLICT (mission_id, shard)
         DO UPDATE SET amount = t.amount + EXCLUDED.amount, pledges = t.pledges + 1;
    SELECT sum(t.amount) INTO total FROM mission_totals t WHERE t.mission_id = p_mission;
    INSERT INTO outbox (topic, payload, created_at, available_at)
         VALUES ('pledge.created',
                 json_build_object('mission_id', p_mission, 'streamer_id', m.streamer_id,
                                   'pledge_id', new_id, 'user_id', p_user,
                                   'amount', p_amount, 'total_pledged', total),
                 p_now, p_now);
    body := json_build_object('id', new_id, 'mission_id', p_mission, 'user_id', p_user,
                              'amount', p_amount, 'total_pledged', total,
                              'created_at', p_created);
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body,
                                      created_at)
             VALUES (p_user, p_key, p_fingerprint, 201, body::text, p_now);
    END IF;
    RETURN QUERY SELECT m.streamer_id, body;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.get_bind().exec_driver_sql(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS missionlink_pledge(bigint, bigint, bigint, "
                   "timestamptz, integer, text, text, timestamptz, text)")
