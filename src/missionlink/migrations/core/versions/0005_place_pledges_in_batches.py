"""Place a batch of pledges in one statement, each refused or failed on its own

Revision ID: 0005
Revises: 0004

Replaces ``missionlink_place_pledge`` (0004, one pledge a call) with
``missionlink_place_pledges``, which takes the pledges that arrived together as parallel
arrays and applies them in one transaction, so many pledges share one round trip and one
commit (``services/pledges.PostgresPledgeDesk`` gathers them). Like 0004 it knows no
status, account name, transfer kind, currency or topic: the caller passes them in.

Each pledge follows the protocol of ``services/idempotency.run`` inside its own
``BEGIN ... EXCEPTION`` block: claim the key (a concurrent duplicate waits on its unique
index, bounded by ``p_key_wait``), replay, refuse a reused key, forget an expired key;
lock the mission ``FOR KEY SHARE``, apply the rules, debit the wallet conditionally,
insert the pledge and its journal transfer. A refusal writes nothing and an error (its
SQLSTATE is returned) undoes only that pledge's block, so one bad pledge never fails its
neighbours. The caller sends the pledges in wallet order, so wallet rows are locked in id
order.

Then, once for the batch and in mission order: one sharded-total row per mission (the
shard of the mission's first new pledge), so concurrent batches on a hot mission lock
their total rows in one order and never deadlock. Each created pledge's
``total_pledged`` is the mission's total after it: the committed total minus the batch's
later pledges to the same mission. Last, its outbox event and its stored response.
"""
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any, Sequence, Union

from alembic import op

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Outcomes per pledge (``idx`` is its 1-based place in the arrays): 'created', 'replay',
# 'mismatch', 'running', 'missing', 'refused', 'funds', and 'error' with ``error_state``.
# A 'refused' row carries the mission, so the caller can name the rule that refused it.
FUNCTION = """
CREATE FUNCTION missionlink_place_pledges(
    p_missions bigint[], p_users bigint[], p_amounts bigint[], p_nows timestamptz[],
    p_keys text[], p_fingerprints text[], p_key_expired_befores timestamptz[],
    p_from_accounts text[], p_to_accounts text[], p_created_ats text[],
    p_shards integer, p_key_wait text, p_open_statuses text[], p_awaiting_acceptance text,
    p_transfer_kind text, p_transfer_prefix text, p_currency text, p_topic text,
    p_created_status integer
) RETURNS TABLE (
    idx integer, outcome text, status_code integer, body text,
    id bigint, streamer_id bigint, creator_id bigint, status text,
    accept_by timestamptz, deadline_at timestamptz, accepted_at timestamptz,
    error_state text
)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_users, 1), 0);
    i integer;
    k record;
    m record;
    r record;
    saved_wait text := current_setting('lock_timeout');
    new_id bigint;
    new_ids bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    streamers bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    response json;
BEGIN
    FOR i IN 1 .. n LOOP
        outcome := NULL; status_code := NULL; body := NULL; id := NULL;
        streamer_id := NULL; creator_id := NULL; status := NULL; accept_by := NULL;
        deadline_at := NULL; accepted_at := NULL; error_state := NULL;
        BEGIN
            IF p_keys[i] IS NOT NULL THEN
                PERFORM set_config('lock_timeout', p_key_wait, true);
                INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
                     VALUES (p_users[i], p_keys[i], p_fingerprints[i], p_nows[i])
                ON CONFLICT DO NOTHING;
                IF NOT FOUND THEN
                    SELECT ik.fingerprint, ik.status_code, ik.response_body, ik.created_at
                      INTO k
                      FROM idempotency_keys ik
                     WHERE ik.user_id = p_users[i] AND ik.key = p_keys[i];
                    IF NOT FOUND THEN
                        -- Purged between the two statements: the caller may simply retry.
                        outcome := 'running';
                    ELSIF k.created_at <= p_key_expired_befores[i] THEN
                        DELETE FROM idempotency_keys ik
                         WHERE ik.user_id = p_users[i] AND ik.key = p_keys[i];
                        INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
                             VALUES (p_users[i], p_keys[i], p_fingerprints[i], p_nows[i])
                        ON CONFLICT DO NOTHING;
                    ELSE
                        outcome := CASE WHEN k.fingerprint <> p_fingerprints[i] THEN 'mismatch'
                                        WHEN k.status_code IS NULL THEN 'running'
                                        ELSE 'replay' END;
                        status_code := k.status_code;
                        body := k.response_body;
                    END IF;
                END IF;
                PERFORM set_config('lock_timeout', saved_wait, true);
            END IF;

            IF outcome IS NULL THEN
                SELECT ms.id, ms.streamer_id, ms.creator_id, ms.status, ms.accept_by,
                       ms.deadline_at, ms.accepted_at INTO m
                  FROM missions ms WHERE ms.id = p_missions[i] FOR KEY SHARE;
                IF NOT FOUND THEN
                    outcome := 'missing';
                ELSIF m.streamer_id = p_users[i]
                      OR NOT (m.status = ANY (p_open_statuses))
                      OR p_nows[i] >= m.deadline_at
                      OR (m.status = p_awaiting_acceptance AND p_nows[i] >= m.accept_by) THEN
                    outcome := 'refused';
                    id := m.id;
                    streamer_id := m.streamer_id;
                    creator_id := m.creator_id;
                    status := m.status;
                    accept_by := m.accept_by;
                    deadline_at := m.deadline_at;
                    accepted_at := m.accepted_at;
                ELSE
                    UPDATE wallets w SET cash_balance = w.cash_balance - p_amounts[i]
                     WHERE w.user_id = p_users[i] AND w.cash_balance >= p_amounts[i];
                    IF NOT FOUND THEN
                        outcome := 'funds';
                    END IF;
                END IF;
                IF outcome IS NOT NULL AND p_keys[i] IS NOT NULL THEN
                    -- A refusal leaves nothing behind, as the rollback of the portable path does.
                    DELETE FROM idempotency_keys ik
                     WHERE ik.user_id = p_users[i] AND ik.key = p_keys[i];
                END IF;
            END IF;

            IF outcome IS NULL THEN
                INSERT INTO pledges AS p (mission_id, user_id, amount, created_at)
                     VALUES (p_missions[i], p_users[i], p_amounts[i], p_nows[i])
                  RETURNING p.id INTO new_id;
                INSERT INTO transfers (id, kind, currency, from_account, to_account, amount,
                                       mission_id, created_at)
                     VALUES (p_transfer_prefix || new_id, p_transfer_kind, p_currency,
                             p_from_accounts[i], p_to_accounts[i], p_amounts[i],
                             p_missions[i], p_nows[i]);
                new_ids[i] := new_id;
                streamers[i] := m.streamer_id;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            -- Everything this pledge wrote is undone; its neighbours are untouched.
            outcome := 'error';
            error_state := SQLSTATE;
            status_code := NULL; body := NULL; id := NULL; streamer_id := NULL;
            creator_id := NULL; status := NULL; accept_by := NULL; deadline_at := NULL;
            accepted_at := NULL;
        END;
        IF outcome IS NOT NULL THEN
            idx := i;
            RETURN NEXT;
        END IF;
    END LOOP;

    INSERT INTO mission_totals AS t (mission_id, shard, amount, pledges)
    SELECT u.mission, min(u.new_id) % p_shards, sum(u.amount), count(*)
      FROM unnest(p_missions, new_ids, p_amounts) AS u (mission, new_id, amount)
     WHERE u.new_id IS NOT NULL
     GROUP BY u.mission
     ORDER BY u.mission
    ON CONFLICT (mission_id, shard)
         DO UPDATE SET amount = t.amount + EXCLUDED.amount, pledges = t.pledges + EXCLUDED.pledges;

    FOR r IN
        SELECT c.i, c.mission, c.new_id, c.amount, c.streamer,
               tot.total - coalesce(sum(c.amount) OVER (
                   PARTITION BY c.mission ORDER BY c.i
                   ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 0) AS total
          FROM unnest(p_missions, new_ids, p_amounts, streamers)
               WITH ORDINALITY AS c (mission, new_id, amount, streamer, i)
          JOIN LATERAL (SELECT sum(t.amount) AS total FROM mission_totals t
                         WHERE t.mission_id = c.mission) tot ON true
         WHERE c.new_id IS NOT NULL
         ORDER BY c.i
    LOOP
        INSERT INTO outbox (topic, payload, created_at, available_at)
             VALUES (p_topic,
                     json_build_object('mission_id', r.mission, 'streamer_id', r.streamer,
                                       'pledge_id', r.new_id, 'user_id', p_users[r.i],
                                       'amount', r.amount, 'total_pledged', r.total),
                     p_nows[r.i], p_nows[r.i]);
        response := json_build_object('id', r.new_id, 'mission_id', r.mission,
                                      'user_id', p_users[r.i], 'amount', r.amount,
                                      'total_pledged', r.total,
                                      'created_at', p_created_ats[r.i]);
        IF p_keys[r.i] IS NOT NULL THEN
            UPDATE idempotency_keys ik
               SET status_code = p_created_status, response_body = response::text
             WHERE ik.user_id = p_users[r.i] AND ik.key = p_keys[r.i];
        END IF;
        idx := r.i;
        outcome := 'created';
        status_code := p_created_status;
        body := response::text;
        id := NULL; streamer_id := NULL; creator_id := NULL; status := NULL;
        accept_by := NULL; deadline_at := NULL; accepted_at := NULL; error_state := NULL;
        RETURN NEXT;
    END LOOP;
END
$$
"""

SIGNATURE = (
    "missionlink_place_pledges(bigint[], bigint[], bigint[], timestamptz[], text[], text[], "
    "timestamptz[], text[], text[], text[], integer, text, text[], text, text, text, text, "
    "text, integer)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {_previous().SIGNATURE}")
        op.get_bind().exec_driver_sql(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
        op.get_bind().exec_driver_sql(_previous().FUNCTION)


def _previous() -> Any:
    """0004's module, read from its own (frozen) file rather than copied here."""
    path = Path(__file__).with_name("0004_place_pledge_function.py")
    spec = spec_from_file_location("missionlink_migration_0004", path)
    assert spec is not None
    assert spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
