"""Place a pledge in one round trip, with the domain's values passed in

Revision ID: 0004
Revises: 0003

Replaces ``missionlink_pledge`` (0003) with ``missionlink_place_pledge``, which knows no
status, account name, transfer kind, currency, topic or error message: the caller
(``services/pledges.PostgresPledgeDesk``) passes them in from the domain constants on
every call, so this text means the same thing whatever those constants become.

It follows the same protocol as ``services/idempotency.run``: claim the key first
(a concurrent duplicate waits on its unique index, bounded by ``p_key_wait``), replay a
stored response, refuse a key reused for another request, forget an expired key; then
lock the mission ``FOR KEY SHARE``, apply the pledge rules, debit the wallet
conditionally, insert the pledge, its journal transfer, the sharded total and the outbox
event, and store the response with the key. A refusal writes nothing (the claim is
removed) and returns an outcome; the caller turns it into the same domain error the
portable path raises, using the same code (``domain.missions.check_action``).
"""
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Sequence, Union

from alembic import op

revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Outcomes: 'created', 'replay', 'mismatch', 'running', 'missing', 'refused', 'funds'.
# A 'refused' row carries the mission, so the caller can name the rule that refused it.
FUNCTION = """
CREATE FUNCTION missionlink_place_pledge(
    p_mission bigint, p_user bigint, p_amount bigint, p_now timestamptz, p_shards integer,
    p_key text, p_fingerprint text, p_key_expired_before timestamptz, p_key_wait text,
    p_open_statuses text[], p_awaiting_acceptance text,
    p_transfer_kind text, p_transfer_prefix text, p_currency text,
    p_from_account text, p_to_account text, p_topic text,
    p_created_status integer, p_created_at text
) RETURNS TABLE (
    outcome text, status_code integer, body text,
    id bigint, streamer_id bigint, creator_id bigint, status text,
    accept_by timestamptz, deadline_at timestamptz, accepted_at timestamptz
)
LANGUAGE plpgsql AS $$
DECLARE
    k record;
    m record;
    saved_wait text;
    new_id bigint;
    total bigint;
    response json;
BEGIN
    IF p_key IS NOT NULL THEN
        saved_wait := current_setting('lock_timeout');
        PERFORM set_config('lock_timeout', p_key_wait, true);
        INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
             VALUES (p_user, p_key, p_fingerprint, p_now)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT ik.fingerprint, ik.status_code, ik.response_body, ik.created_at INTO k
              FROM idempotency_keys ik WHERE ik.user_id = p_user AND ik.key = p_key;
            IF NOT FOUND THEN
                -- Purged between the two statements: the caller may simply retry.
                outcome := 'running';
                RETURN NEXT;
                RETURN;
            ELSIF k.created_at <= p_key_expired_before THEN
                DELETE FROM idempotency_keys ik WHERE ik.user_id = p_user AND ik.key = p_key;
                INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
                     VALUES (p_user, p_key, p_fingerprint, p_now)
                ON CONFLICT DO NOTHING;
            ELSE
                outcome := CASE WHEN k.fingerprint <> p_fingerprint THEN 'mismatch'
                                WHEN k.status_code IS NULL THEN 'running'
                                ELSE 'replay' END;
                status_code := k.status_code;
                body := k.response_body;
                RETURN NEXT;
                RETURN;
            END IF;
        END IF;
        PERFORM set_config('lock_timeout', saved_wait, true);
    END IF;

    SELECT ms.id, ms.streamer_id, ms.creator_id, ms.status, ms.accept_by, ms.deadline_at,
           ms.accepted_at INTO m
      FROM missions ms WHERE ms.id = p_mission FOR KEY SHARE;
    IF NOT FOUND THEN
        outcome := 'missing';
    ELSIF m.streamer_id = p_user
          OR NOT (m.status = ANY (p_open_statuses))
          OR p_now >= m.deadline_at
          OR (m.status = p_awaiting_acceptance AND p_now >= m.accept_by) THEN
        outcome := 'refused';
        id := m.id;
        streamer_id := m.streamer_id;
        creator_id := m.creator_id;
        status := m.status;
        accept_by := m.accept_by;
        deadline_at := m.deadline_at;
        accepted_at := m.accepted_at;
    ELSE
        UPDATE wallets w SET cash_balance = w.cash_balance - p_amount
         WHERE w.user_id = p_user AND w.cash_balance >= p_amount;
        IF NOT FOUND THEN
            outcome := 'funds';
        END IF;
    END IF;
    IF outcome IS NOT NULL THEN
        -- A refusal leaves nothing behind, as the rollback of the portable path does.
        IF p_key IS NOT NULL THEN
            DELETE FROM idempotency_keys ik WHERE ik.user_id = p_user AND ik.key = p_key;
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;

    INSERT INTO pledges AS p (mission_id, user_id, amount, created_at)
         VALUES (p_mission, p_user, p_amount, p_now) RETURNING p.id INTO new_id;
    INSERT INTO transfers (id, kind, currency, from_account, to_account, amount, mission_id,
                           created_at)
         VALUES (p_transfer_prefix || new_id, p_transfer_kind, p_currency, p_from_account,
                 p_to_account, p_amount, p_mission, p_now);
    INSERT INTO mission_totals AS t (mission_id, shard, amount, pledges)
         VALUES (p_mission, new_id % p_shards, p_amount, 1)
    ON CONFLICT (mission_id, shard)
         DO UPDATE SET amount = t.amount + EXCLUDED.amount, pledges = t.pledges + 1;
    SELECT sum(t.amount) INTO total FROM mission_totals t WHERE t.mission_id = p_mission;
    INSERT INTO outbox (topic, payload, created_at, available_at)
         VALUES (p_topic,
                 json_build_object('mission_id', p_mission, 'streamer_id', m.streamer_id,
                                   'pledge_id', new_id, 'user_id', p_user,
                                   'amount', p_amount, 'total_pledged', total),
                 p_now, p_now);
    response := json_build_object('id', new_id, 'mission_id', p_mission, 'user_id', p_user,
                                  'amount', p_amount, 'total_pledged', total,
                                  'created_at', p_created_at);
    IF p_key IS NOT NULL THEN
        UPDATE idempotency_keys ik
           SET status_code = p_created_status, response_body = response::text
         WHERE ik.user_id = p_user AND ik.key = p_key;
    END IF;
    outcome := 'created';
    status_code := p_created_status;
    body := response::text;
    RETURN NEXT;
END
$$
"""

SIGNATURE = (
    "missionlink_place_pledge(bigint, bigint, bigint, timestamptz, integer, text, text, "
    "timestamptz, text, text[], text, text, text, text, text, text, text, integer, text)"
)
PREVIOUS = (
    "missionlink_pledge(bigint, bigint, bigint, timestamptz, integer, text, text, "
    "timestamptz, text)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {PREVIOUS}")
        op.get_bind().exec_driver_sql(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
        op.get_bind().exec_driver_sql(_previous_function())


def _previous_function() -> str:
    """0003's text, read from its own (frozen) file rather than copied here."""
    path = Path(__file__).with_name("0003_pledge_function.py")
    spec = spec_from_file_location("missionlink_migration_0003", path)
    assert spec is not None
    assert spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.FUNCTION)
