"""Wires settings to adapters: the one place that decides which implementation runs."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from argon2 import PasswordHasher

from missionlink.adapters.broker.inprocess import Broker, make_broker
from missionlink.adapters.db.engine import Database, Timeouts
from missionlink.adapters.email.senders import FileMailer, Mailer, SmtpMailer
from missionlink.adapters.payments.providers import PaymentProvider, make_provider
from missionlink.adapters.security.rate_limit import RateLimiter, make_rate_limiter
from missionlink.adapters.security.revocations import (
    RevocationList,
    SessionRevocations,
    make_revocation_store,
)
from missionlink.adapters.security.tokens import TokenService, load_or_create_key
from missionlink.adapters.security.vault import Vault, vault_from_setting
from missionlink.config import Settings
from missionlink.domain.clock import Clock, ReferenceClock, SystemClock
from missionlink.observability import metrics, tracing
from missionlink.services.identity import Accounts
from missionlink.services.members import MemberDefaults
from missionlink.services.notices import CommitNotices
from missionlink.services.pledges import PledgeDesk, make_pledge_desk
from missionlink.services.read_model import ReadCache


@dataclass
class Container:
    settings: Settings
    clock: Clock
    identity_db: Database
    core_db: Database
    tokens: TokenService
    passwords: PasswordHasher
    mailer: Mailer
    payments: PaymentProvider
    broker: Broker
    limiter: RateLimiter
    sessions: SessionRevocations
    #: This process's copy of the public reads a spike hammers.
    read_cache: ReadCache
    #: Placing a pledge: batches of one function call on PostgreSQL, a portable
    #: transaction elsewhere.
    pledges: PledgeDesk
    #: What committed effects tell the other replicas and the worker, coalesced.
    notices: CommitNotices
    #: Seals payout bank accounts; None when PAYOUT_ACCOUNT_KEYS is empty (payouts off).
    vault: Vault | None = None

    @property
    def member_defaults(self) -> MemberDefaults:
        s = self.settings
        return MemberDefaults.within(signup_points=s.signup_points, min_pledge=s.min_pledge,
                                     max_mission_seconds=s.max_mission_seconds)

    @property
    def accounts(self) -> Accounts:
        """The identity use cases' ports and limits (read afresh: tests swap a port)."""
        s = self.settings
        return Accounts(
            identity_db=self.identity_db, core_db=self.core_db, passwords=self.passwords,
            tokens=self.tokens, sessions=self.sessions, limiter=self.limiter, clock=self.clock,
            members=self.member_defaults,
            signups_per_minute=s.rate_limit_signups_per_minute,
            login_failures=s.rate_limit_login_failures,
            login_max_delay_seconds=s.rate_limit_login_max_delay_seconds,
            refresh_token_seconds=s.refresh_token_seconds,
            access_token_seconds=s.access_token_seconds,
        )

    async def close(self) -> None:
        await self.read_cache.close()
        await self.mailer.close()
        await self.sessions.close()
        await self.broker.close()
        await self.limiter.close()
        await self.core_db.dispose()
        await self.identity_db.dispose()


def make_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            user=settings.smtp_user,
            password=settings.smtp_password,
            tls=settings.smtp_tls.value,
            ca_file=settings.smtp_ca_file,
        )
    return FileMailer(settings.mail_dir)


def payment_provider(settings: Settings) -> PaymentProvider:
    # The providers' SDKs are imported only where they are used: PortOne's alone is about
    # 1,100 generated modules, some 20 MB of every API process's memory.
    if settings.payment_provider == "portone":
        from missionlink.adapters.payments.real import PortOneProvider

        return PortOneProvider(
            api_secret=settings.portone_api_secret,
            webhook_secret=settings.portone_webhook_secret,
            store_id=settings.portone_store_id,
            channel_key=settings.portone_channel_key,
            base_url=settings.portone_api_base_url,
        )
    if settings.payment_provider == "stripe":
        from missionlink.adapters.payments.real import StripeProvider

        return StripeProvider(
            secret_key=settings.stripe_secret_key,
            publishable_key=settings.stripe_publishable_key,
            webhook_secret=settings.stripe_webhook_secret,
            base_url=settings.stripe_api_base_url,
            tolerance_seconds=settings.payment_webhook_tolerance_seconds,
        )
    return make_provider(
        settings.payment_provider,
        settings.payment_webhook_secret,
        settings.payment_webhook_tolerance_seconds,
    )


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    mailer: Mailer | None = None,
    broker: Broker | None = None,
    payments: PaymentProvider | None = None,
) -> Container:
    key = load_or_create_key(settings.jwt_private_key, settings.data_dir)
    broker = broker or make_broker(settings.broker_url)
    # One list, read by token checks and written by the session revocations.
    revoked = RevocationList()
    # On PostgreSQL every process takes "now" from the database server's clock (the worker
    # calibrates it), so one whose own clock is off judges no deadline early or late.
    clock = clock or (SystemClock() if settings.embedded else ReferenceClock())
    timeouts = Timeouts.of(settings)
    core_db = Database(settings.core_url, pool_size=settings.db_pool_size, timeouts=timeouts)
    identity_db = Database(settings.identity_url, pool_size=settings.db_pool_size,
                           timeouts=timeouts)
    # Traces only when an OTLP endpoint is configured (observability/tracing.py).
    if tracing.setup():
        tracing.instrument_engine(core_db.engine)
        tracing.instrument_engine(identity_db.engine)
    metrics.watch_pool("core", core_db.engine.pool, core_db.reader.pool)
    metrics.watch_pool("identity", identity_db.engine.pool, identity_db.reader.pool)
    read_cache = ReadCache(max_entries=settings.read_cache_max_entries,
                           max_bytes=settings.read_cache_max_bytes,
                           ttl_seconds=settings.read_cache_ttl_seconds, clock=clock)
    return Container(
        settings=settings,
        clock=clock,
        identity_db=identity_db,
        core_db=core_db,
        tokens=TokenService(
            key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_seconds,
            revoked=revoked,
        ),
        passwords=PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        ),
        mailer=mailer or make_mailer(settings),
        payments=payments or payment_provider(settings),
        broker=broker,
        limiter=make_rate_limiter(settings.broker_url),
        sessions=SessionRevocations(
            revoked,
            broker,
            ttl_seconds=settings.access_token_seconds,
            store=make_revocation_store(settings.broker_url),
        ),
        read_cache=read_cache,
        pledges=make_pledge_desk(core_db, settings),
        notices=CommitNotices(broker, read_cache),
        vault=vault_from_setting(settings.payout_account_keys.get_secret_value()),
    )


#: How often a process sets its clock by the database server's, and the offset it warns at.
CALIBRATE_SECONDS = 10.0
CLOCK_WARN_SECONDS = 1.0


async def calibrate_clock(c: Container) -> float | None:
    """Set a :class:`ReferenceClock` by the database server's clock; the offset in seconds,
    or None for any other clock (the embedded default's, a test's)."""
    clock = c.clock
    if not isinstance(clock, ReferenceClock):
        return None
    offset = (await clock.calibrate(c.core_db.server_now)).total_seconds()
    metrics.CLOCK_OFFSET.set(offset)
    if abs(offset) > CLOCK_WARN_SECONDS:
        structlog.get_logger(__name__).warning("clock.offset", seconds=round(offset, 3))
    return offset
