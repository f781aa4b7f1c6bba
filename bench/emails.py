"""Result emails for a settled mission with 1,000 backers, through real SMTP on loopback.

    MISSIONLINK_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1/postgres \
        .venv/bin/python bench/emails.py [--short] [--backers 1000]

Seeds a rejected mission (set-based SQL, balanced journal), settles it with the worker,
then times how long the worker takes from `settlement = settled` until every result email
has been accepted by a local aiosmtpd server (one SMTP connection, reused). Drops its
databases and its data directory at the end, also on failure. ``--short`` sends 100.
Exits 1 when not every result email arrives, never because of a time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiosmtpd.controller import Controller
from benchkit.databases import db_url  # type: ignore[import-not-found]
from benchkit.processes import free_port  # type: ignore[import-not-found]
from benchkit.run import Broken, exit_code  # type: ignore[import-not-found]
from settlement import ADMIN, admin  # type: ignore[import-not-found]
from sqlalchemy import text

from missionlink import bootstrap
from missionlink.adapters.email.senders import SmtpMailer
from missionlink.config import Settings
from missionlink.migrations.runner import upgrade_all
from missionlink.services.settlement import settle
from missionlink.workers import emails


class Counter:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


async def seed(c: bootstrap.Container, backers: int) -> None:
    now = datetime.now(UTC)
    hi = 1000 + backers - 1
    async with c.identity_db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO users (id, email, email_normalized, password_hash, display_name, role,"
            " language, created_at) SELECT g, 'fan' || g || '@example.com',"
            " 'fan' || g || '@example.com', 'x', 'Fan ' || g, 'viewer',"
            " CASE WHEN g % 2 = 0 THEN 'ko' ELSE 'en' END, :now"
            " FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g"),
            {"lo": 1, "hi": hi, "now": now})
    async with c.core_db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO members SELECT g, 'Fan ' || g, 'viewer', :now"
            " FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g"),
            {"lo": 1, "hi": hi, "now": now})
        await conn.execute(text(
            "INSERT INTO wallets SELECT g, 0, 0"
            " FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g"),
            {"lo": 1, "hi": hi})
        await conn.execute(text(
            "INSERT INTO missions (id, streamer_id, creator_id, title, description, status,"
            " fee_bps, created_at, accept_by, deadline_at, ended_at, settlement) VALUES"
            " (1, 1, 1000, '매운 라면 먹기', '', 'rejected', 1000, :now, :later, :later, :now,"
            " 'pending')"), {"now": now, "later": now + timedelta(hours=1)})
        await conn.execute(text(
            "INSERT INTO topups (user_id, amount, provider, provider_payment_id, status,"
            " created_at, completed_at) SELECT g, 1000, 'sandbox', 'b-' || g, 'completed',"
            " :now, :now FROM generate_series(1000, CAST(:hi AS bigint)) g"),
            {"hi": hi, "now": now})
        await conn.execute(text(
            "INSERT INTO transfers (id, kind, currency, from_account, to_account, amount,"
            " created_at) SELECT 'topup:b-' || g, 'topup', 'KRW', 'provider:sandbox',"
            " 'user:' || g || '\\:cash', 1000, :now"
            " FROM generate_series(1000, CAST(:hi AS bigint)) g"), {"hi": hi, "now": now})
        await conn.execute(text(
            "INSERT INTO pledges (mission_id, user_id, amount, created_at)"
            " SELECT 1, g, 1000, :now FROM generate_series(1000, CAST(:hi AS bigint)) g"),
            {"hi": hi, "now": now})
        await conn.execute(text(
            "INSERT INTO mission_totals SELECT 1, 0, SUM(amount), COUNT(*) FROM pledges"))
        await conn.execute(text(
            "INSERT INTO transfers (id, kind, currency, from_account, to_account, amount,"
            " mission_id, created_at) SELECT 'pledge:' || id, 'pledge', 'KRW',"
            " 'user:' || user_id || '\\:cash', 'mission:1\\:escrow', amount, 1, :now"
            " FROM pledges"), {"now": now})


async def bench(args: argparse.Namespace) -> None:
    port = free_port()
    inbox = Counter()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    suffix = uuid.uuid4().hex[:8]
    core, ident = f"ml_bench_core_{suffix}", f"ml_bench_identity_{suffix}"
    data_dir = tempfile.mkdtemp(prefix="ml-bench-emails-")
    controller.start()
    try:
        await admin(f'CREATE DATABASE "{core}"')
        await admin(f'CREATE DATABASE "{ident}"')
        settings = Settings(database_url=db_url(ADMIN, core),
                            identity_database_url=db_url(ADMIN, ident),
                            data_dir=data_dir)  # type: ignore[arg-type]
        await asyncio.to_thread(upgrade_all, settings)
        c = bootstrap.build(settings, mailer=SmtpMailer("127.0.0.1", port, tls="none"))
        try:
            await seed(c, args.backers)
            async with c.core_db.begin() as conn:
                if not await settle(conn, 1, datetime.now(UTC)):
                    raise Broken("the mission was not settled")
            t0 = time.perf_counter()
            while await emails.send_batch(c):
                pass
            elapsed = time.perf_counter() - t0
            print(f"{inbox.count:,} result emails accepted by SMTP in {elapsed:.2f} s "
                  f"({inbox.count / elapsed:.0f}/s) after settlement", flush=True)
            if inbox.count != args.backers + 1:  # every backer and the streamer
                raise Broken(f"{inbox.count} result emails arrived, expected {args.backers + 1}")
        finally:
            await c.close()
    finally:
        controller.stop()
        await admin(f'DROP DATABASE IF EXISTS "{core}" WITH (FORCE)')
        await admin(f'DROP DATABASE IF EXISTS "{ident}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true", help="100 backers")
    parser.add_argument("--backers", type=int, default=1000)
    args = parser.parse_args()
    if args.short:
        args.backers = 100
    return exit_code(lambda: asyncio.run(bench(args)))


if __name__ == "__main__":
    raise SystemExit(main())
