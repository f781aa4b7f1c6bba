"""Placing a pledge: one port, two implementations, chosen once in ``bootstrap``.

Both implementations take the same request and give the same answer (the stored
response, replayed for a repeated Idempotency-Key) or raise the same domain error:

- ``TransactionalPledgeDesk`` runs ``services.missions.pledge`` inside
  ``services.idempotency.run``: portable, several statements in one transaction.
- ``PostgresPledgeDesk`` makes one autocommit call to ``missionlink_place_pledge``
  (migration 0004): the hot path, one round trip, idempotency key included. The function
  receives every status, account name, transfer kind, currency and topic from the domain
  constants below, and a refusal comes back as an outcome that is explained here with the
  domain's own code (``check_action``), so both paths refuse with the same words.

``tests/integration/test_pledge_parity.py`` runs one table of refusals and successes
against both.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db.core_tables import TOTAL_SHARDS
from missionlink.adapters.db.engine import Database
from missionlink.config import Settings
from missionlink.domain import ledger as L
from missionlink.domain.missions import OPEN, Action, Status, check_action
from missionlink.services import idempotency, ledger, missions, outbox
from missionlink.services.idempotency import StoredResponse
from missionlink.services.mission_queries import iso, view_of

CREATED = 201


class PledgeDesk(Protocol):
    """Places a pledge once per (user, Idempotency-Key) and returns the stored response."""

    async def place(
        self,
        *,
        now: datetime,
        user_id: int,
        mission_id: int,
        amount: int,
        key: str | None,
        fingerprint: str,
    ) -> StoredResponse: ...


class TransactionalPledgeDesk:
    """The portable pledge: ``idempotency.run`` around ``missions.pledge``."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def place(
        self,
        *,
        now: datetime,
        user_id: int,
        mission_id: int,
        amount: int,
        key: str | None,
        fingerprint: str,
    ) -> StoredResponse:
        # Before the key is looked at, as on PostgreSQL: an amount out of bounds is refused
        # the same way whatever the key has seen.
        missions.check_pledge_amount(self.settings, amount)

        async def work(conn: AsyncConnection) -> tuple[int, Any]:
            return CREATED, await missions.pledge(
                conn, settings=self.settings, now=now, user_id=user_id,
                mission_id=mission_id, amount=amount,
            )

        return await idempotency.run(
            self.db, user_id=user_id, key=key, fingerprint_=fingerprint, now=now,
            ttl_seconds=self.settings.idempotency_ttl_seconds, work=work,
        )


_PLACE = text(
    "SELECT * FROM missionlink_place_pledge("
    ":mission, :user, :amount, :now, :shards, :key, :fingerprint, :key_expired_before, "
    ":key_wait, :open_statuses, :awaiting_acceptance, :transfer_kind, :transfer_prefix, "
    ":currency, :from_account, :to_account, :topic, :created_status, :created_at)"
)
#: The values the function would otherwise have to spell out itself.
_DOMAIN_VALUES: dict[str, Any] = {
    "shards": TOTAL_SHARDS,
    "key_wait": idempotency.KEY_WAIT,
    "open_statuses": sorted(s.value for s in OPEN),
    # ``domain.missions.is_overdue``: only a mission still awaiting acceptance times out
    # at ``accept_by``.
    "awaiting_acceptance": Status.pending.value,
    "transfer_kind": L.TransferKind.pledge.value,
    "transfer_prefix": missions.PLEDGE_TRANSFER_PREFIX,
    "currency": L.KRW,
    "topic": outbox.PLEDGE_CREATED,
    "created_status": CREATED,
}


class PostgresPledgeDesk:
    """The same pledge in one autocommit statement on PostgreSQL (migration 0004)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def place(
        self,
        *,
        now: datetime,
        user_id: int,
        mission_id: int,
        amount: int,
        key: str | None,
        fingerprint: str,
    ) -> StoredResponse:
        missions.check_pledge_amount(self.settings, amount)
        params = {
            **_DOMAIN_VALUES,
            "mission": mission_id,
            "user": user_id,
            "amount": amount,
            "now": now,
            "key": key,
            "fingerprint": fingerprint,
            "key_expired_before": now - timedelta(seconds=self.settings.idempotency_ttl_seconds),
            "from_account": L.user_cash(user_id),
            "to_account": L.escrow(mission_id),
            "created_at": iso(now),
        }
        try:
            async with self.db.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                row = (await conn.execute(_PLACE, params)).one()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == idempotency.LOCK_NOT_AVAILABLE:
                raise idempotency.still_waiting() from exc
            raise
        outcome = row.outcome
        if outcome in ("created", "replay"):
            return StoredResponse(row.status_code, json.loads(row.body),
                                  replayed=outcome == "replay")
        if outcome == "mismatch":
            raise idempotency.key_reused()
        if outcome == "running":
            raise idempotency.still_running()
        if outcome == "missing":
            raise missions.mission_not_found(mission_id)
        if outcome == "funds":
            raise ledger.insufficient_funds(L.KRW, amount)
        if outcome == "refused":
            check_action(view_of(row), Action.pledge, user_id, now)
        # The function refused what the domain allows: the two statements of the rules
        # have drifted apart, which the parity test exists to catch.
        raise RuntimeError(f"missionlink_place_pledge answered {outcome!r} for mission "
                           f"{mission_id}")


def make_pledge_desk(db: Database, settings: Settings) -> PledgeDesk:
    if db.is_postgres:
        return PostgresPledgeDesk(db, settings)
    return TransactionalPledgeDesk(db, settings)
