"""Settle a mission with 100,000 backers (and 10,000 bettors) on PostgreSQL; time it.

    MISSIONLINK_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1/postgres \
        .venv/bin/python bench/settlement.py [--short] [--backers 100000] [--bettors 10000]

Creates its own databases, seeds them with set-based SQL (balanced journal included),
then times `services.settlement.settle` for a refunded mission and a paid-out one, checks
every ledger invariant, and drops the databases (also on failure, Ctrl-C or SIGTERM).
``--short`` settles 1,000 backers and 100 bettors, so CI keeps the script working in
seconds. Exits 1 when a settlement or ``reconcile`` fails, never because of a time.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from benchkit.databases import (  # type: ignore[import-not-found]
    admin_exec,
    admin_url,
    db_url,
)
from benchkit.run import Broken, exit_code  # type: ignore[import-not-found]
from sqlalchemy import func, select, text

from missionlink.adapters.db.core_tables import email_jobs, transfers
from missionlink.adapters.db.engine import Database
from missionlink.config import Settings
from missionlink.migrations.runner import upgrade_all
from missionlink.services.reconcile import check
from missionlink.services.settlement import settle

ADMIN = admin_url()


async def admin(sql: str) -> None:
    await admin_exec(ADMIN, sql)


SEED = """
INSERT INTO members (user_id, display_name, role, created_at)
  SELECT g, 'Fan ' || g, 'viewer', :now FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g;
INSERT INTO wallets (user_id, cash_balance, points_balance)
  SELECT g, 0, 1000 FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g;
INSERT INTO transfers (id, kind, currency, from_account, to_account, amount, created_at)
  SELECT 'signup_bonus:' || g, 'signup_bonus', 'PTS', 'platform:points',
         'user:' || g || '\\:points', 1000, :now FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g;
INSERT INTO topups (user_id, amount, provider, provider_payment_id, status, created_at,
                    completed_at)
  SELECT g, 5000, 'sandbox', 'bench-' || g, 'completed', :now, :now
  FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g;
INSERT INTO transfers (id, kind, currency, from_account, to_account, amount, created_at)
  SELECT 'topup:' || t.id, 'topup', 'KRW', 'provider:sandbox', 'user:' || t.user_id || '\\:cash',
         5000, :now FROM topups t
  WHERE t.provider_payment_id LIKE 'bench-%'
    AND t.user_id BETWEEN CAST(:lo AS bigint) AND CAST(:hi AS bigint);
"""

MISSION = """
INSERT INTO pledges (mission_id, user_id, amount, created_at)
  SELECT CAST(:m AS bigint), g, 1000 + (g % 7) * 100, :now FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g;
INSERT INTO transfers (id, kind, currency, from_account, to_account, amount, mission_id,
                       created_at)
  SELECT 'pledge:' || p.id, 'pledge', 'KRW', 'user:' || p.user_id || '\\:cash',
         'mission:' || CAST(:m AS bigint) || '\\:escrow', p.amount, CAST(:m AS bigint), :now FROM pledges p WHERE p.mission_id = CAST(:m AS bigint);
INSERT INTO mission_totals (mission_id, shard, amount, pledges)
  SELECT CAST(:m AS bigint), 0, SUM(amount), COUNT(*) FROM pledges WHERE mission_id = CAST(:m AS bigint);
UPDATE wallets w SET cash_balance = 5000 - (1000 + (w.user_id % 7) * 100)
  WHERE w.user_id BETWEEN CAST(:lo AS bigint) AND CAST(:hi AS bigint);
INSERT INTO bets (mission_id, user_id, side, points, created_at, updated_at)
  SELECT CAST(:m AS bigint), g, CASE WHEN g % 3 = 0 THEN 'failure' ELSE 'success' END, 10 + g % 50, :now, :now
  FROM generate_series(CAST(:lo AS bigint), CAST(:blo AS bigint)) g;
INSERT INTO transfers (id, kind, currency, from_account, to_account, amount, mission_id,
                       created_at)
  SELECT 'bet:' || b.id, 'bet', 'PTS', 'user:' || b.user_id || '\\:points',
         'mission:' || CAST(:m AS bigint) || '\\:pool', b.points, CAST(:m AS bigint), :now FROM bets b WHERE b.mission_id = CAST(:m AS bigint);
UPDATE wallets w SET points_balance = points_balance - b.points
  FROM bets b WHERE b.mission_id = CAST(:m AS bigint) AND b.user_id = w.user_id;
"""


async def run(db: Database, backers: int, bettors: int) -> None:
    now = datetime.now(UTC)
    async with db.begin() as conn:
        for stmt in SEED.strip().split(";\n"):
            await conn.execute(text(stmt), {"lo": 1000, "hi": 1000 + 2 * backers - 1, "now": now})
        await conn.execute(text("INSERT INTO members VALUES (1, 'Streamer', 'streamer', :now)"),
                           {"now": now})
        await conn.execute(text("INSERT INTO wallets VALUES (1, 0, 0)"))
        for m_id, status in ((1, "rejected"), (2, "succeeded")):
            await conn.execute(text(
                "INSERT INTO missions (id, streamer_id, creator_id, title, description, status,"
                " fee_bps, created_at, accept_by, deadline_at, ended_at, settlement) VALUES"
                " (:m, 1, 1000, 'bench', '', :s, 1000, :now, :later, :later, :now, 'pending')"),
                {"m": m_id, "s": status, "now": now, "later": now + timedelta(hours=1)})
            lo = 1000 + (m_id - 1) * backers
            params = {"m": m_id, "lo": lo, "hi": lo + backers - 1, "blo": lo + bettors - 1,
                      "now": now}
            for stmt in MISSION.strip().split(";\n"):
                await conn.execute(text(stmt), params)
    async with db.begin() as conn:
        await conn.execute(text("ANALYZE"))
    print(f"seeded 2 missions x {backers:,} backers, {bettors:,} bettors each", flush=True)
    for m_id, label in ((1, "refunds (rejected)"), (2, "payout (succeeded)")):
        t0 = time.perf_counter()
        async with db.begin() as conn:
            if not await settle(conn, m_id, datetime.now(UTC)):
                raise Broken(f"mission {m_id} ({label}) was not settled")
        elapsed = time.perf_counter() - t0
        async with db.read() as conn:
            jobs = await conn.scalar(select(func.count()).where(email_jobs.c.mission_id == m_id))
            moved = await conn.scalar(select(func.count()).where(
                transfers.c.mission_id == m_id, transfers.c.kind != "pledge",
                transfers.c.kind != "bet"))
        print(f"settle {label}: {elapsed:.2f} s  ({moved:,} transfers written, "
              f"{jobs:,} email jobs queued)", flush=True)
    t0 = time.perf_counter()
    async with db.read() as conn:
        report = await check(conn)
    print(f"reconcile: {'all invariants hold' if report.ok else report.render()} "
          f"({time.perf_counter() - t0:.2f} s)")
    if not report.ok:
        raise Broken("reconcile found broken ledger invariants")


async def bench(args: argparse.Namespace) -> None:
    suffix = uuid.uuid4().hex[:8]
    core, ident = f"ml_bench_core_{suffix}", f"ml_bench_identity_{suffix}"
    try:
        await admin(f'CREATE DATABASE "{core}"')
        await admin(f'CREATE DATABASE "{ident}"')
        settings = Settings(database_url=db_url(ADMIN, core),
                            identity_database_url=db_url(ADMIN, ident))
        await asyncio.to_thread(upgrade_all, settings)
        db = Database(settings.core_url)
        try:
            await run(db, args.backers, args.bettors)
        finally:
            await db.dispose()
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{core}" WITH (FORCE)')
        await admin(f'DROP DATABASE IF EXISTS "{ident}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true",
                        help="1,000 backers and 100 bettors: the whole script in seconds")
    parser.add_argument("--backers", type=int, default=100_000)
    parser.add_argument("--bettors", type=int, default=10_000)
    args = parser.parse_args()
    if args.short:
        args.backers, args.bettors = 1_000, 100
    return exit_code(lambda: asyncio.run(bench(args)))


if __name__ == "__main__":
    raise SystemExit(main())
