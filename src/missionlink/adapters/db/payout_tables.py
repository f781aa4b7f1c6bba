"""Streamer payouts: the bank account each streamer is paid to (sealed), withdrawals and
the bank transfer batches an admin exports (docs/payments.md, "Payouts")."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from missionlink.adapters.db.core_tables import core_metadata
from missionlink.adapters.db.types import BigId, UTCDateTime
from missionlink.domain.payouts import WITHDRAWAL_STATES

WITHDRAWAL_STATE_CHECK = "state IN ({})".format(", ".join(f"'{s}'" for s in WITHDRAWAL_STATES))

# One account per streamer. The number and holder are sealed together by the vault
# (adapters/security/vault.py) under ``key_id``; the bank and the last four digits stay
# readable for the masked display.
payout_accounts = Table(
    "payout_accounts",
    core_metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("bank_code", String(3), nullable=False),
    Column("account_last4", String(4), nullable=False),
    Column("sealed", String(1000), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("length(bank_code) = 3", name="bank_code"),
    CheckConstraint("length(account_last4) = 4", name="last4"),
    CheckConstraint("key_id <> ''", name="key_id"),
)

payout_batches = Table(
    "payout_batches",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("created_by", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("total_net", BigInteger, nullable=False),
    CheckConstraint("lines > 0 AND total_net > 0", name="not_empty"),
)

# A withdrawal keeps its own sealed copy of the account it was asked to: changing or
# removing the account later does not redirect money already on its way.
withdrawals = Table(
    "withdrawals",
    core_metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("gross", BigInteger, nullable=False),
    Column("income_tax", BigInteger, nullable=False),
    Column("local_tax", BigInteger, nullable=False),
    Column("net", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("bank_code", String(3), nullable=False),
    Column("account_last4", String(4), nullable=False),
    Column("sealed", String(1000), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("batch_id", BigInteger, ForeignKey("payout_batches.id"), nullable=True),
    Column("failure_reason", String(300), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("exported_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    CheckConstraint("gross > 0 AND net > 0 AND income_tax >= 0 AND local_tax >= 0",
                    name="amounts_positive"),
    CheckConstraint("net + income_tax + local_tax = gross", name="amounts_add_up"),
    CheckConstraint(WITHDRAWAL_STATE_CHECK, name="state"),
    CheckConstraint("(state = 'failed' AND failure_reason IS NOT NULL) OR "
                    "(state <> 'failed' AND failure_reason IS NULL)", name="failure_reason"),
    CheckConstraint("state NOT IN ('exported', 'paid') OR batch_id IS NOT NULL",
                    name="exported_in_batch"),
    UniqueConstraint("user_id", "idempotency_key"),
    Index("ix_withdrawals_user_created", "user_id", "created_at"),
    Index("ix_withdrawals_state", "state"),
    Index("ix_withdrawals_batch", "batch_id"),
)
