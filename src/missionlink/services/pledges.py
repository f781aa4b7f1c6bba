"""Placing a pledge: one port, two implementations, chosen once in ``bootstrap``.

Both implementations take the same request and give the same answer (the stored
response, replayed for a repeated Idempotency-Key) or raise the same domain error:

- ``TransactionalPledgeDesk`` runs ``services.missions.pledge`` inside
  ``services.idempotency.run``: portable, several statements in one transaction.
- ``PostgresPledgeDesk`` gathers the pledges that arrive together into one autocommit
  call to ``missionlink_place_pledges`` (migration 0019): the hot path, one round trip
  and one commit for a whole batch, idempotency keys included, each pledge in its own
  block after the batch's missions are locked in id order. The function
  receives every status, account name, transfer kind, currency and topic from the domain
  constants below, and a refusal comes back as an outcome that is explained here with the
  domain's own code (``check_action``), so both paths refuse with the same words.

``tests/integration/test_pledge_parity.py`` runs one table of refusals and successes
against both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
import structlog
from sqlalchemy import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from missionlink.adapters.db import outbox
from missionlink.adapters.db.core_tables import TOTAL_SHARDS
from missionlink.adapters.db.engine import RETRYABLE_SQLSTATES, Database, is_retryable
from missionlink.domain import ledger
from missionlink.domain import ledger as L
from missionlink.domain.errors import WalletInDebt
from missionlink.domain.missions import OPEN, Action, MissionView, Status, check_action
from missionlink.domain.pledge_messages import blocked_pattern, message_of
from missionlink.domain.timestamps import iso
from missionlink.services import idempotency, missions
from missionlink.services.idempotency import StoredResponse
from missionlink.services.missions import MissionLimits

CREATED = 201


class PledgeSettings(MissionLimits, Protocol):
    """What the pledge desks read of the configuration (``config.Settings`` has it all)."""

    @property
    def idempotency_ttl_seconds(self) -> int: ...
    @property
    def pledge_batch_max(self) -> int: ...
    @property
    def pledge_batch_concurrency(self) -> int: ...
    @property
    def pledge_message_blocked_words(self) -> list[str]: ...


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
        message: str | None = None,
        anonymous: bool = False,
    ) -> StoredResponse: ...


class TransactionalPledgeDesk:
    """The portable pledge: ``idempotency.run`` around ``missions.pledge``."""

    def __init__(self, db: Database, settings: PledgeSettings) -> None:
        self.db = db
        self.settings = settings
        self._blocked = blocked_pattern(settings.pledge_message_blocked_words)

    async def place(
        self,
        *,
        now: datetime,
        user_id: int,
        mission_id: int,
        amount: int,
        key: str | None,
        fingerprint: str,
        message: str | None = None,
        anonymous: bool = False,
    ) -> StoredResponse:
        # Before the key is looked at, as on PostgreSQL: an amount out of bounds is refused
        # the same way whatever the key has seen.
        missions.check_pledge_amount(self.settings, amount)
        stored = message_of(message, self._blocked)

        async def work(conn: AsyncConnection) -> tuple[int, Any]:
            return CREATED, await missions.pledge(
                conn, settings=self.settings, now=now, user_id=user_id,
                mission_id=mission_id, amount=amount, message=stored, anonymous=anonymous,
            )

        return await idempotency.run(
            self.db, user_id=user_id, key=key, fingerprint_=fingerprint, now=now,
            ttl_seconds=self.settings.idempotency_ttl_seconds, work=work,
        )


#: The per-pledge arrays of one call, in the function's order.
_COLUMNS = ("missions", "users", "amounts", "nows", "keys", "fingerprints",
            "key_expired_befores", "from_accounts", "to_accounts", "created_ats")
#: The values the function would otherwise have to spell out itself, in its order.
_DOMAIN_VALUES: dict[str, Any] = {
    "shards": TOTAL_SHARDS,
    "key_wait": idempotency.KEY_WAIT,
    "open_statuses": sorted(s.value for s in OPEN),
    # ``domain.missions.closes_at``: only a mission still awaiting acceptance times out
    # at ``accept_by``; pledges close at the deadline whatever the result grace period.
    "awaiting_acceptance": Status.pending.value,
    "transfer_kind": L.TransferKind.pledge.value,
    "transfer_prefix": missions.PLEDGE_TRANSFER_PREFIX,
    "currency": L.KRW,
    "topic": outbox.PLEDGE_CREATED,
    "created_status": CREATED,
}
#: After the domain values, more arrays: each pledge's request id (0006), message and
#: whether it is anonymous (0013).
_LATER_COLUMNS = ("request_ids", "messages", "anonymous")
_ARGUMENTS = (*_COLUMNS, *_DOMAIN_VALUES, *_LATER_COLUMNS)
#: Sent as the driver's own statement with positional parameters: no statement to compile
#: and no named parameters to convert per batch.
_PLACE = ("SELECT * FROM missionlink_place_pledges("
          + ", ".join(f"${n}" for n in range(1, len(_ARGUMENTS) + 1)) + ")")
_DOMAIN_ARGUMENTS = tuple(_DOMAIN_VALUES.values())
#: A whole batch that PostgreSQL chose to abort (deadlock, serialization) is run again;
#: nothing of it was committed. A single pledge aborted that way inside its batch (its
#: block rolled back, its neighbours committed) goes into a later batch, as often.
_BATCH_RETRIES = 2


@dataclass(slots=True)
class _Pledge:
    row: tuple[Any, ...]
    user_id: int
    mission_id: int
    amount: int
    now: datetime
    key: str | None
    answer: asyncio.Future[Any]
    retries: int = 0


class PostgresPledgeDesk:
    """The same pledge on PostgreSQL, gathered with the pledges that arrive with it.

    Pledges are applied in batches by ``missionlink_place_pledges`` (migration 0019): one
    autocommit statement, one round trip and one commit for the whole batch, each pledge
    refused or failed on its own inside it. A pledge starts a batch on the event loop's
    next turn (with every pledge read in this turn) while fewer than
    ``pledge_batch_concurrency`` batches are running; otherwise it waits for the next one,
    which takes up to ``pledge_batch_max`` waiting pledges. So a quiet server commits
    each pledge alone, and a busy one commits many per round trip and per WAL flush.
    Each reply is given only after the batch's COMMIT.
    """

    def __init__(self, db: Database, settings: PledgeSettings) -> None:
        self.db = db
        self.settings = settings
        self.max_batch = settings.pledge_batch_max
        self.max_running = settings.pledge_batch_concurrency
        self._blocked = blocked_pattern(settings.pledge_message_blocked_words)
        self._waiting: list[_Pledge] = []
        self._running: set[asyncio.Task[None]] = set()
        self._kicked = False

    async def place(
        self,
        *,
        now: datetime,
        user_id: int,
        mission_id: int,
        amount: int,
        key: str | None,
        fingerprint: str,
        message: str | None = None,
        anonymous: bool = False,
    ) -> StoredResponse:
        missions.check_pledge_amount(self.settings, amount)
        row = (mission_id, user_id, amount, now, key, fingerprint,
               now - timedelta(seconds=self.settings.idempotency_ttl_seconds),
               L.user_cash(user_id), L.escrow(mission_id), iso(now),
               # The pledge.created event names the request, as outbox.emit does.
               structlog.contextvars.get_contextvars().get("request_id"),
               message_of(message, self._blocked), anonymous)
        pledge = _Pledge(row, user_id, mission_id, amount, now, key,
                         asyncio.get_running_loop().create_future())
        self._waiting.append(pledge)
        if not self._kicked:
            # On the loop's next turn, not now: the pledges whose requests were read in
            # this turn join the batch instead of each starting one of their own.
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._kick)
        try:
            # A caller that goes away cancels only its answer: a batch runs to its end and
            # skips answers already done.
            row = await pledge.answer
        except asyncio.CancelledError:
            if pledge in self._waiting:  # not sent yet: nothing of it will be applied
                self._waiting.remove(pledge)
            raise
        return self._answer(pledge, row)

    def _kick(self) -> None:
        self._kicked = False
        self._start_batches()

    def _start_batches(self) -> None:
        while self._waiting and len(self._running) < self.max_running:
            batch: list[_Pledge] = []
            later: list[_Pledge] = []
            keys: set[tuple[int, str]] = set()
            for pledge in self._waiting:
                # Two pledges with one key never share a batch: the second must see the
                # first's committed answer (a replay), not its claim.
                key = (pledge.user_id, pledge.key) if pledge.key is not None else None
                if len(batch) >= self.max_batch or (key is not None and key in keys):
                    later.append(pledge)
                    continue
                if key is not None:
                    keys.add(key)
                batch.append(pledge)
            self._waiting = later
            task = asyncio.create_task(self._run(batch), name="missionlink-pledge-batch")
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._start_batches()

    async def _run(self, batch: list[_Pledge]) -> None:
        # Wallet rows are locked in id order, so two batches never wait on each other in
        # a cycle over wallets; a wallet's pledges keep their order, which decides which
        # of them its cash covers.
        batch.sort(key=lambda p: p.user_id)
        try:
            rows = await self._call(batch)
        except BaseException as exc:  # every pledge of the batch gets the batch's failure
            for pledge in batch:
                if not pledge.answer.done():
                    pledge.answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        by_place = {row.idx: row for row in rows}
        again = []
        for place, pledge in enumerate(batch, start=1):
            if pledge.answer.done():
                continue
            row = by_place.get(place)
            if (row is not None and row.outcome == "error"
                    and row.error_state in RETRYABLE_SQLSTATES
                    and pledge.retries < _BATCH_RETRIES):
                # Chosen as a deadlock victim on the function's per-pledge path against
                # another transaction: undone alone, so it can run again.
                pledge.retries += 1
                again.append(pledge)
            elif row is None:
                pledge.answer.set_exception(RuntimeError(
                    f"missionlink_place_pledges gave no answer for pledge {place}"))
            else:
                pledge.answer.set_result(row)
        self._waiting[:0] = again

    async def _call(self, batch: list[_Pledge]) -> Sequence[Row[Any]]:
        columns = [list(values) for values in zip(*(p.row for p in batch), strict=True)]
        params = (*columns[:len(_COLUMNS)], *_DOMAIN_ARGUMENTS, *columns[len(_COLUMNS):])
        for attempt in range(_BATCH_RETRIES + 1):
            try:
                async with self.db.engine.connect() as conn:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    return (await conn.exec_driver_sql(_PLACE, params)).all()
            except DBAPIError as exc:
                if attempt == _BATCH_RETRIES or not is_retryable(exc):
                    raise
                await asyncio.sleep(0.005 * 2**attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _answer(pledge: _Pledge, row: Any) -> StoredResponse:
        outcome = row.outcome
        if outcome in ("created", "replay"):
            return StoredResponse(row.status_code, orjson.loads(row.body),
                                  replayed=outcome == "replay")
        if outcome == "mismatch":
            raise idempotency.key_reused()
        if outcome == "running":
            raise idempotency.still_running()
        if outcome == "missing":
            raise missions.mission_not_found(pledge.mission_id)
        if outcome == "funds":
            raise ledger.insufficient_funds(L.KRW, pledge.amount)
        if outcome == "debt":
            raise WalletInDebt(int(row.body))
        if outcome == "refused":
            check_action(_refused_view(row), Action.pledge, pledge.user_id, pledge.now)
        if outcome == "error" and row.error_state == idempotency.LOCK_NOT_AVAILABLE:
            if pledge.key is None:
                # No key to wait for: a row it needed (its wallet, its mission) stayed
                # locked past DB_LOCK_TIMEOUT_MS, and nothing of it was applied.
                raise PledgeBusy(f"pledge to mission {pledge.mission_id} waited past the "
                                 f"lock timeout and was not applied")
            raise idempotency.still_waiting()
        if outcome == "error":
            raise PledgeFailed(f"pledge to mission {pledge.mission_id} failed in the "
                               f"database with SQLSTATE {row.error_state}")
        # The function refused what the domain allows: the two statements of the rules
        # have drifted apart, which the parity test exists to catch.
        raise RuntimeError(f"missionlink_place_pledges answered {outcome!r} for mission "
                           f"{pledge.mission_id}")


def _refused_view(row: Row[Any]) -> MissionView:
    """The mission as the function saw it. It returns no ``result_by``, which a pledge's
    answer never depends on: pledges close at the deadline."""
    return MissionView(
        id=row.id, streamer_id=row.streamer_id, creator_id=row.creator_id,
        status=Status(row.status), accept_by=row.accept_by, deadline_at=row.deadline_at,
        accepted_at=row.accepted_at, result_by=row.deadline_at,
    )


class PledgeFailed(RuntimeError):
    """One pledge of a batch failed in the database; its neighbours are unaffected."""


class PledgeBusy(RuntimeError):
    """A pledge without a key waited for a locked row past the lock timeout and was not
    applied: the database is busy (503, retry), not an idempotency conflict."""


def make_pledge_desk(db: Database, settings: PledgeSettings) -> PledgeDesk:
    if db.is_postgres:
        return PostgresPledgeDesk(db, settings)
    return TransactionalPledgeDesk(db, settings)
