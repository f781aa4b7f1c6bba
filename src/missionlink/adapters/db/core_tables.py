"""Core database: wallets, the journal, missions, predictions, outbox and email jobs.

User ids here refer to the identity database; there are no foreign keys across the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from missionlink.adapters.db.identity_tables import NAMING
from missionlink.adapters.db.types import BigId, UTCDateTime

core_metadata = MetaData(naming_convention=NAMING)

members = Table(
    "members",
    core_metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("display_name", String(50), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

wallets = Table(
    "wallets",
    core_metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("cash_balance", BigInteger, nullable=False, server_default=text("0")),
    Column("points_balance", BigInteger, nullable=False, server_default=text("0")),
    # What a chargeback took back beyond the cash there was: owed to the platform, kept in
    # the user's receivable account (``user:{id}:receivable``), never as negative cash.
    # While it is above zero, pledges and bets are refused.
    Column("debt", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("cash_balance >= 0", name="cash_not_negative"),
    CheckConstraint("points_balance >= 0", name="points_not_negative"),
    CheckConstraint("debt >= 0", name="debt_not_negative"),
)

channels = Table(
    "channels",
    core_metadata,
    Column("streamer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("missions_enabled", Boolean, nullable=False, server_default=text("true")),
    Column("min_mission_amount", BigInteger, nullable=False),
    Column("accept_timeout_seconds", Integer, nullable=False),
    Column("overlay_token", String(64), nullable=False, unique=True),
    Column("live_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # The public profile (domain/profile.py): intro text and one link to the streamer's
    # SOOP, CHZZK or YouTube channel; the checks are the backstop of the code's rules.
    Column("intro", Text, nullable=False, server_default=text("''")),
    Column("link", String(300), nullable=True),
    CheckConstraint("min_mission_amount > 0", name="min_amount_positive"),
    CheckConstraint("accept_timeout_seconds >= 60", name="accept_timeout_floor"),
    CheckConstraint("length(intro) <= 500", name="intro_length"),
    CheckConstraint("link IS NULL OR (link LIKE 'https://%' AND length(link) <= 300)",
                    name="link_https"),
)

# Append-only double-entry journal: one row is one transfer of `amount` from one account
# to another, so every transfer's two postings (-amount, +amount) balance by construction.
transfers = Table(
    "transfers",
    core_metadata,
    Column("id", String(80), primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("from_account", String(64), nullable=False),
    Column("to_account", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("mission_id", BigInteger, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("from_account <> to_account", name="distinct_accounts"),
    CheckConstraint("currency IN ('KRW', 'PTS')", name="currency"),
)
Index("ix_transfers_from", transfers.c.from_account, transfers.c.created_at)
Index("ix_transfers_to", transfers.c.to_account, transfers.c.created_at)
Index("ix_transfers_mission", transfers.c.mission_id)

#: A top-up's states: ``pending`` (intent created, waiting for the payer), ``awaiting_deposit``
#: (a virtual account was issued; the bank deposit comes later), ``completed`` (credited),
#: ``failed``, ``cancelled``, ``rejected`` (paid, but not the amount or currency asked for).
TOPUP_STATUSES = ("pending", "awaiting_deposit", "completed", "failed", "cancelled", "rejected")
TOPUP_STATUS_CHECK = "status IN ({})".format(", ".join(f"'{s}'" for s in TOPUP_STATUSES))

topups = Table(
    "topups",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("provider_payment_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    # What the server asked the provider for; a payment is credited only if it matches.
    Column("currency", String(3), nullable=False, server_default="KRW"),
    # Why a top-up ended without money (failed, cancelled, rejected), in the provider's or
    # our words; and, for a rejected one, what the provider reported it was paid.
    Column("failure_reason", String(300), nullable=True),
    Column("reported_amount", BigInteger, nullable=True),
    Column("reported_currency", String(3), nullable=True),
    # A virtual account issued for a later bank deposit: where to send it and until when.
    Column("virtual_account", String(200), nullable=True),
    Column("deposit_due_at", UTCDateTime, nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint(TOPUP_STATUS_CHECK, name="status"),
    CheckConstraint("currency = 'KRW'", name="currency_krw"),
    UniqueConstraint("provider", "provider_payment_id"),
    Index("ix_topups_user_created", "user_id", "created_at"),
)

#: A top-up refund's states (domain/refunds.py): ``pending`` (cash held, the provider asked
#: or about to be), ``succeeded`` (the provider paid it back), ``failed`` (reversed to cash).
REFUND_STATE_CHECK = "state IN ('pending', 'succeeded', 'failed')"

topup_refunds = Table(
    "topup_refunds",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("topup_id", BigId, ForeignKey("topups.id"), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    # The provider's id of the refund (PortOne's cancellation id, Stripe's re_...).
    Column("provider_refund_id", String(128), nullable=True, unique=True),
    # Sent to the provider so a retried call refunds once; the request's Idempotency-Key
    # when it had one.
    Column("idempotency_key", String(255), nullable=False),
    Column("reason", String(300), nullable=True),
    Column("failure_reason", String(300), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("settled_at", UTCDateTime, nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint(REFUND_STATE_CHECK, name="state"),
    UniqueConstraint("user_id", "idempotency_key"),
    Index("ix_topup_refunds_user_created", "user_id", "created_at"),
    # One pending refund per top-up: the provider's guard on what is left stays exact.
    Index("ux_topup_refunds_one_pending", "topup_id", unique=True,
          sqlite_where=text("state = 'pending'"), postgresql_where=text("state = 'pending'")),
)

#: A chargeback's states, as the provider reports the dispute: ``opened`` (the money was
#: taken back while the dispute runs), ``lost`` (taken back for good), ``won`` (given back).
CHARGEBACK_STATES = ("opened", "lost", "won")

chargebacks = Table(
    "chargebacks",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("topup_id", BigInteger, ForeignKey("topups.id"), nullable=False, index=True),
    # Stripe's dispute id (``dp_…``); PortOne's ``{paymentId}:{cancellationId}``.
    Column("provider_dispute_id", String(160), nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),
    Column("state", String(8), nullable=False),
    Column("reason", String(300), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("state IN ({})".format(", ".join(f"'{s}'" for s in CHARGEBACK_STATES)),
                    name="state"),
)

MISSION_STATUSES = (
    "('pending', 'accepted', 'rejected', 'cancelled', 'succeeded', 'failed', 'expired')"
)

missions = Table(
    "missions",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("streamer_id", BigInteger, nullable=False),
    Column("creator_id", BigInteger, nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("fee_bps", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("accept_by", UTCDateTime, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=False),
    # NULL: no grace period for the result (missions from before it, or rows written by a
    # tool that does not know it); read as ``deadline_at`` everywhere.
    Column("result_by", UTCDateTime, nullable=True),
    Column("accepted_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("settlement", String(16), nullable=True),
    Column("settled_at", UTCDateTime, nullable=True),
    # What the streamer said when rejecting (optional); backers see it with their refund.
    Column("reject_reason", String(200), nullable=True),
    CheckConstraint(f"status IN {MISSION_STATUSES}", name="status"),
    CheckConstraint(
        "settlement IS NULL OR settlement IN ('pending', 'settled')", name="settlement"
    ),
    CheckConstraint("streamer_id <> creator_id", name="not_own_channel"),
    CheckConstraint("fee_bps >= 0 AND fee_bps <= 10000", name="fee_bps"),
    CheckConstraint(
        "result_by IS NULL OR result_by >= deadline_at", name="result_by_after_deadline"
    ),
    CheckConstraint(
        "(status IN ('pending', 'accepted')) = (settlement IS NULL)",
        name="settlement_when_terminal",
    ),
    CheckConstraint(
        "reject_reason IS NULL OR status = 'rejected'", name="reject_reason_when_rejected"
    ),
)
Index("ix_missions_streamer_status", missions.c.streamer_id, missions.c.status)
Index("ix_missions_status_deadline", missions.c.status, missions.c.deadline_at)
Index("ix_missions_creator", missions.c.creator_id, missions.c.status, missions.c.ended_at)

pledges = Table(
    "pledges",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("mission_id", BigInteger, ForeignKey("missions.id"), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The backer's words (blocked words masked), shown unless the streamer hid them.
    Column("message", String(100), nullable=True),
    Column("anonymous", Boolean, nullable=False, server_default=text("false")),
    Column("message_hidden_at", UTCDateTime, nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
)
Index("ix_pledges_mission_user", pledges.c.mission_id, pledges.c.user_id, pledges.c.amount)

#: Shards of each mission's running total, so thousands of concurrent pledges to one hot
#: mission spread their writes over TOTAL_SHARDS rows instead of queueing on one.
TOTAL_SHARDS = 8
mission_totals = Table(
    "mission_totals",
    core_metadata,
    Column("mission_id", BigInteger, ForeignKey("missions.id"), nullable=False),
    Column("shard", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("pledges", BigInteger, nullable=False),
    PrimaryKeyConstraint("mission_id", "shard"),
    CheckConstraint("amount >= 0 AND pledges >= 0", name="not_negative"),
)
Index("ix_pledges_user", pledges.c.user_id)

bets = Table(
    "bets",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("mission_id", BigInteger, ForeignKey("missions.id"), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("side", String(8), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("side IN ('success', 'failure')", name="side"),
    CheckConstraint("points > 0", name="points_positive"),
    UniqueConstraint("mission_id", "user_id"),
)
Index("ix_bets_user", bets.c.user_id)

idempotency_keys = Table(
    "idempotency_keys",
    core_metadata,
    Column("user_id", BigInteger, nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    PrimaryKeyConstraint("user_id", "key"),
)

outbox = Table(
    "outbox",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("topic", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("available_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("processed_at", UTCDateTime, nullable=True),
    #: The ``X-Request-Id`` of the request that wrote the event (migration 0006).
    Column("request_id", String(128), nullable=True),
)
Index(
    "ix_outbox_unprocessed",
    outbox.c.available_at,
    outbox.c.id,
    postgresql_where=outbox.c.processed_at.is_(None),
    sqlite_where=outbox.c.processed_at.is_(None),
)

processed_events = Table(
    "processed_events",
    core_metadata,
    Column("event_id", BigInteger, nullable=False),
    Column("handler", String(64), nullable=False),
    Column("processed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("event_id", "handler"),
)

dead_letters = Table(
    "dead_letters",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", BigInteger, nullable=False, unique=True),
    Column("topic", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Column("replayed_at", UTCDateTime, nullable=True),
)

email_jobs = Table(
    "email_jobs",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("mission_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("role", String(16), nullable=False),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("status", String(16), nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    CheckConstraint("status IN ('queued', 'sent', 'failed')", name="status"),
    CheckConstraint("role IN ('backer', 'streamer')", name="role"),
    UniqueConstraint("mission_id", "user_id"),
)
Index(
    "ix_email_jobs_queued",
    email_jobs.c.id,
    postgresql_where=email_jobs.c.status == "queued",
    sqlite_where=email_jobs.c.status == "queued",
)
