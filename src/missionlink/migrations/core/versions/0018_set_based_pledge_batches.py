"""Place a batch of pledges with set-based statements, one pledge at a time only when refused

Revision ID: 0018
Revises: 0016

Recreates ``missionlink_place_pledges`` (last 0016, which refuses a wallet in debt) with the same parameters and outcomes.
Before, the function ran every pledge of a batch in its own ``BEGIN ... EXCEPTION`` block,
six to eight statements each. Now a batch takes a fixed number of statements, whatever its
size, in one block (the *set pass*):

1. claim every key of the batch with one ``INSERT ... ON CONFLICT DO NOTHING``, in
   (user, key) order; a key that is taken (replay, reuse, expired, still running) is
   left to the per-pledge path;
2. lock the missions ``FOR KEY SHARE`` in id order and apply the pledge rules to every
   pledge at once;
3. lock the wallets ``FOR NO KEY UPDATE`` in id order, keep each wallet's pledges while
   their running sum (in the batch's order) fits its cash, and debit each wallet once by
   that sum;
4. insert the pledges (ids drawn from their sequence in the batch's order) and their
   journal transfers to the escrows with one statement each;
5. undo the claims of the pledges the set pass did not place.

Every pledge a set step refused (key taken, mission missing or closed to this user, not
enough cash) then runs the per-pledge path of 0005 to 0016 unchanged, in its own block, so
it is refused or failed on its own with the same outcome as before. If a set statement
raises (a key held past ``p_key_wait``, a lock timeout, a deadlock, a value the table
refuses), the set pass is undone as a whole and every pledge of the batch takes the
per-pledge path, which isolates the failing one.

Last, as before but in three statements for the batch: one sharded-total row per mission
(in mission order), then the outbox events, the stored responses of the keys and the
answers, each created pledge's ``total_pledged`` being the mission's total after it.
"""
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any, Sequence, Union

from alembic import op

revision: str = '0018'
down_revision: Union[str, Sequence[str], None] = '0016'
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
    p_created_status integer, p_request_ids text[] DEFAULT NULL,
    p_messages text[] DEFAULT NULL, p_anonymous boolean[] DEFAULT NULL
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
    claimed integer[];
    open_rows integer[];
    placed integer[] := '{}';
    pledge_ids regclass := pg_get_serial_sequence('pledges', 'id')::regclass;
BEGIN
    -- The set pass: every statement covers the whole batch.
    BEGIN
        PERFORM set_config('lock_timeout', p_key_wait, true);
        WITH taken AS (
            INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)
            SELECT u.usr, u.key, u.fingerprint, u.at
              FROM unnest(p_users, p_keys, p_fingerprints, p_nows)
                   AS u (usr, key, fingerprint, at)
             WHERE u.key IS NOT NULL
             ORDER BY u.usr, u.key
            ON CONFLICT DO NOTHING
            RETURNING idempotency_keys.user_id AS usr, idempotency_keys.key AS key)
        SELECT coalesce(array_agg(f.i), '{}') INTO claimed
          FROM (SELECT min(u.i)::integer AS i, u.usr, u.key
                  FROM unnest(p_users, p_keys) WITH ORDINALITY AS u (usr, key, i)
                 WHERE u.key IS NOT NULL
                 GROUP BY u.usr, u.key) f
          JOIN taken t ON t.usr = f.usr AND t.key = f.key;
        PERFORM set_config('lock_timeout', saved_wait, true);

        PERFORM 1 FROM missions ms
          WHERE ms.id = ANY (ARRAY(SELECT u.mission
                                     FROM unnest(p_missions, p_keys) WITH ORDINALITY
                                          AS u (mission, key, i)
                                    WHERE u.key IS NULL OR u.i = ANY (claimed)))
          ORDER BY ms.id FOR KEY SHARE;

        SELECT coalesce(array_agg(u.i::integer ORDER BY u.i), '{}') INTO open_rows
          FROM unnest(p_missions, p_users, p_keys, p_nows) WITH ORDINALITY
               AS u (mission, usr, key, at, i)
          JOIN missions ms ON ms.id = u.mission AND ms.id = ANY (p_missions)
         WHERE (u.key IS NULL OR u.i = ANY (claimed))
           AND NOT coalesce(ms.streamer_id = u.usr
                            OR NOT (ms.status = ANY (p_open_statuses))
                            OR u.at >= ms.deadline_at
                            OR (ms.status = p_awaiting_acceptance AND u.at >= ms.accept_by),
                            false);

        PERFORM 1 FROM wallets w
          WHERE w.user_id = ANY (ARRAY(SELECT p_users[o] FROM unnest(open_rows) AS o))
          ORDER BY w.user_id FOR NO KEY UPDATE;

        WITH wanted AS (
            SELECT u.i, u.usr, u.amount,
                   sum(u.amount) OVER (PARTITION BY u.usr ORDER BY u.i) AS running
              FROM unnest(p_users, p_amounts) WITH ORDINALITY AS u (usr, amount, i)
             WHERE u.i = ANY (open_rows)),
        fitting AS (
            SELECT wanted.i, wanted.usr, wanted.amount
              FROM wanted
              JOIN wallets w ON w.user_id = wanted.usr AND w.user_id = ANY (p_users)
             WHERE wanted.running <= w.cash_balance AND w.debt = 0),
        debited AS (
            UPDATE wallets w SET cash_balance = w.cash_balance - d.amount
              FROM (SELECT fitting.usr, sum(fitting.amount) AS amount
                      FROM fitting GROUP BY fitting.usr) d
             WHERE w.user_id = d.usr AND w.user_id = ANY (p_users))
        SELECT coalesce(array_agg(fitting.i::integer ORDER BY fitting.i), '{}') INTO placed
          FROM fitting;

        FOR r IN
            SELECT o.i, ms.streamer_id AS streamer
              FROM unnest(placed) AS o (i)
              JOIN missions ms ON ms.id = p_missions[o.i] AND ms.id = ANY (p_missions)
             ORDER BY o.i
        LOOP
            new_ids[r.i] := nextval(pledge_ids);
            streamers[r.i] := r.streamer;
        END LOOP;

        INSERT INTO pledges (id, mission_id, user_id, amount, created_at, message, anonymous)
        SELECT c.new_id, c.mission, c.usr, c.amount, c.at, c.message,
               coalesce(c.anonymous, false)
          FROM unnest(new_ids, p_missions, p_users, p_amounts, p_nows, p_messages, p_anonymous)
               AS c (new_id, mission, usr, amount, at, message, anonymous)
         WHERE c.new_id IS NOT NULL
         ORDER BY c.new_id;
        INSERT INTO transfers (id, kind, currency, from_account, to_account, amount,
                               mission_id, created_at)
        SELECT p_transfer_prefix || c.new_id, p_transfer_kind, p_currency, c.from_account,
               c.to_account, c.amount, c.mission, c.at
          FROM unnest(new_ids, p_missions, p_amounts, p_nows, p_from_accounts, p_to_accounts)
               AS c (new_id, mission, amount, at, from_account, to_account)
         WHERE c.new_id IS NOT NULL
         ORDER BY c.new_id;

        -- A pledge left to the per-pledge path starts there afresh, its key unclaimed.
        DELETE FROM idempotency_keys ik
         USING unnest(claimed) AS c (i)
         WHERE NOT (c.i = ANY (placed))
           AND ik.user_id = p_users[c.i] AND ik.key = p_keys[c.i]
           AND ik.user_id = ANY (p_users) AND ik.key = ANY (p_keys);
    EXCEPTION WHEN OTHERS THEN
        -- Everything the set pass wrote is undone: every pledge takes the per-pledge path.
        placed := '{}';
        new_ids := array_fill(NULL::bigint, ARRAY[n]);
        streamers := array_fill(NULL::bigint, ARRAY[n]);
    END;

    -- The per-pledge path, for the pledges a set step refused.
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN i = ANY (placed);
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
                INSERT INTO pledges AS p (mission_id, user_id, amount, created_at, message,
                                          anonymous)
                     VALUES (p_missions[i], p_users[i], p_amounts[i], p_nows[i],
                             p_messages[i], coalesce(p_anonymous[i], false))
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

    RETURN QUERY
    WITH made AS (
        SELECT c.i::integer AS i, c.mission, c.new_id, c.amount, c.streamer, c.at,
               p_users[c.i] AS usr, p_keys[c.i] AS key, p_request_ids[c.i] AS request_id,
               p_messages[c.i] AS message, coalesce(p_anonymous[c.i], false) AS anonymous,
               tot.total - coalesce(sum(c.amount) OVER (
                   PARTITION BY c.mission ORDER BY c.i
                   ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 0) AS total
          FROM unnest(p_missions, new_ids, p_amounts, streamers, p_nows)
               WITH ORDINALITY AS c (mission, new_id, amount, streamer, at, i)
          JOIN LATERAL (SELECT sum(t.amount) AS total FROM mission_totals t
                         WHERE t.mission_id = c.mission) tot ON true
         WHERE c.new_id IS NOT NULL),
    answered AS (
        SELECT made.*,
               json_build_object('id', made.new_id, 'mission_id', made.mission,
                                 'user_id', made.usr, 'amount', made.amount,
                                 'total_pledged', made.total,
                                 'created_at', p_created_ats[made.i],
                                 'message', made.message,
                                 'anonymous', made.anonymous)::text AS response
          FROM made),
    events AS (
        INSERT INTO outbox (topic, payload, created_at, available_at, request_id)
        SELECT p_topic,
               json_build_object('mission_id', a.mission, 'streamer_id', a.streamer,
                                 'pledge_id', a.new_id, 'user_id', a.usr,
                                 'amount', a.amount, 'total_pledged', a.total,
                                 'message', a.message, 'anonymous', a.anonymous),
               a.at, a.at, a.request_id
          FROM answered a
         ORDER BY a.i),
    stored AS (
        UPDATE idempotency_keys ik
           SET status_code = p_created_status, response_body = a.response
          FROM answered a
         WHERE a.key IS NOT NULL AND ik.user_id = a.usr AND ik.key = a.key
           AND ik.user_id = ANY (p_users) AND ik.key = ANY (p_keys))
    SELECT a.i, 'created'::text, p_created_status, a.response, NULL::bigint, NULL::bigint,
           NULL::bigint, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz,
           NULL::text
      FROM answered a
     ORDER BY a.i;
END
$$
"""


def signature() -> str:
    """The same parameters as 0016's (and 0013's) function."""
    return str(_previous().signature())


def function_sql() -> str:
    """``FUNCTION`` with 0016's debt rule in its per-pledge path: a wallet in debt places
    nothing (the set pass already leaves its pledges out) and is told apart from one
    without the cash."""
    sql = FUNCTION
    for old, new in _previous()._EDITS:
        assert sql.count(old) == 1, old
        sql = sql.replace(old, new)
    return sql


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {_previous().signature()}")
        op.get_bind().exec_driver_sql(function_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP FUNCTION IF EXISTS {signature()}")
        op.get_bind().exec_driver_sql(_previous().function_sql())


def _previous() -> Any:
    """0016's module, read from its own (frozen) file rather than copied here."""
    path = Path(__file__).with_name("0016_chargebacks.py")
    spec = spec_from_file_location("missionlink_migration_0016", path)
    assert spec is not None
    assert spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
