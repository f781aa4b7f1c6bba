"""Seeding straight through SQL: fans (wallet, a completed sandbox top-up and its journal
transfer, so the ledger stays balanced), streamers, accepted missions, and a deep backlog
of earlier pledges on one mission."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text

from missionlink.adapters.db.core_tables import (
    channels,
    members,
    missions,
    topups,
    transfers,
    wallets,
)
from missionlink.adapters.db.engine import Database
from missionlink.adapters.db.identity_tables import users
from missionlink.adapters.security.tokens import TokenService, load_or_create_key
from missionlink.config import Settings
from missionlink.domain import ledger as L

PLEDGE_AMOUNT = 1000
FAN_CASH = 10_000_000


@dataclass
class Seed:
    fans: list[int]
    streamers: list[int]
    tokens: dict[int, str]


async def seed_users(settings: Settings, n_fans: int, n_streamers: int) -> Seed:
    now = datetime.now(UTC)
    people = [("streamer", i) for i in range(n_streamers)] + [("viewer", i) for i in range(n_fans)]
    identity = Database(settings.identity_url)
    core = Database(settings.core_url)
    try:
        async with identity.begin() as conn:
            rows = [
                {"email": f"bench-{role}-{i}@example.com",
                 "email_normalized": f"bench-{role}-{i}@example.com", "password_hash": "x",
                 "display_name": f"Bench {role} {i}", "role": role, "language": "ko",
                 "created_at": now}
                for role, i in people
            ]
            result = await conn.execute(
                insert(users).returning(users.c.id, users.c.role, sort_by_parameter_order=True),
                rows,
            )
            created = [(r.id, r.role) for r in result]
        streamers = [uid for uid, role in created if role == "streamer"]
        fans = [uid for uid, role in created if role == "viewer"]
        async with core.begin() as conn:
            await conn.execute(insert(members), [
                {"user_id": uid, "display_name": f"Bench {uid}", "role": role, "created_at": now}
                for uid, role in created
            ])
            await conn.execute(insert(wallets), [
                {"user_id": uid, "cash_balance": FAN_CASH if role == "viewer" else 0,
                 "points_balance": 0}
                for uid, role in created
            ])
            await conn.execute(insert(channels), [
                {"streamer_id": uid, "missions_enabled": True, "min_mission_amount": 1000,
                 "accept_timeout_seconds": 3600, "overlay_token": secrets.token_urlsafe(24),
                 "updated_at": now}
                for uid in streamers
            ])
            result = await conn.execute(
                insert(topups).returning(topups.c.id, topups.c.user_id,
                                         sort_by_parameter_order=True),
                [{"user_id": uid, "amount": FAN_CASH, "provider": "sandbox",
                  "provider_payment_id": f"bench-{uid}", "status": "completed",
                  "created_at": now, "completed_at": now} for uid in fans],
            )
            await conn.execute(insert(transfers), [
                {"id": f"topup:{r.id}", "kind": L.TransferKind.topup.value, "currency": L.KRW,
                 "from_account": L.provider_clearing("sandbox"),
                 "to_account": L.user_cash(r.user_id), "amount": FAN_CASH, "created_at": now}
                for r in result
            ])
    finally:
        await identity.dispose()
        await core.dispose()
    key = load_or_create_key("", settings.data_dir)
    tokens = TokenService(key, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                          ttl_seconds=3600)
    minted = {uid: tokens.issue(uid, "viewer", now) for uid in fans}
    return Seed(fans=fans, streamers=streamers, tokens=minted)


async def create_missions(settings: Settings, seed: Seed, count: int, label: str) -> list[int]:
    """Accepted missions, open for a day, spread over the streamers."""
    now = datetime.now(UTC)
    core = Database(settings.core_url)
    try:
        async with core.begin() as conn:
            result = await conn.execute(
                insert(missions).returning(missions.c.id, sort_by_parameter_order=True),
                [{"streamer_id": seed.streamers[i % len(seed.streamers)],
                  "creator_id": seed.fans[i % len(seed.fans)],
                  "title": f"bench {label} {i}", "description": "", "status": "accepted",
                  "fee_bps": settings.platform_fee_bps, "created_at": now,
                  "accept_by": now + timedelta(hours=1), "deadline_at": now + timedelta(days=1),
                  "accepted_at": now} for i in range(count)],
            )
            return [r.id for r in result]
    finally:
        await core.dispose()


#: the sharded running totals, where the schema has them
TOTALS_SQL = """INSERT INTO mission_totals (mission_id, shard, amount, pledges)
    SELECT :m, 0, sum(amount), count(*) FROM pledges WHERE mission_id = :m"""

BACKLOG_SQL = [
    """INSERT INTO pledges (mission_id, user_id, amount, created_at)
       SELECT :m, (CAST(:fans AS bigint[]))[1 + g % :nfans], :amount, :now
       FROM generate_series(1, :n) AS g""",
    """INSERT INTO transfers (id, kind, currency, from_account, to_account, amount, mission_id,
                              created_at)
       SELECT 'pledge:' || p.id, 'pledge', 'KRW', 'user:' || p.user_id || ':' || 'cash',
              'mission:' || p.mission_id || ':' || 'escrow', p.amount, p.mission_id,
              p.created_at
       FROM pledges p WHERE p.mission_id = :m""",
    """UPDATE wallets w SET cash_balance = w.cash_balance - s.total
       FROM (SELECT user_id, sum(amount) AS total FROM pledges WHERE mission_id = :m
             GROUP BY user_id) s
       WHERE w.user_id = s.user_id""",
]


async def seed_backlog(settings: Settings, seed: Seed, mission_id: int, count: int) -> None:
    """``count`` earlier pledges on one mission, journal and wallets kept in step; vacuumed
    (the state autovacuum leaves a long-running hot mission in)."""
    core = Database(settings.core_url)
    params = {"m": mission_id, "fans": seed.fans, "nfans": len(seed.fans),
              "amount": PLEDGE_AMOUNT, "n": count, "now": datetime.now(UTC)}
    try:
        async with core.begin() as conn:
            for sql in BACKLOG_SQL:
                await conn.execute(text(sql), params)
            if await conn.scalar(text("SELECT to_regclass('mission_totals') IS NOT NULL")):
                await conn.execute(text(TOTALS_SQL), params)
        async with core.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE pledges, transfers, wallets"))
    finally:
        await core.dispose()
