"""Pledges gathered into batches on PostgreSQL (``PostgresPledgeDesk``, migration 0019).

Pledges that arrive together share one call and one commit; inside it each pledge is
placed in its own block, so each is refused or failed on its own, answered only after the
commit, and counted once. The table
of single refusals and successes is ``test_pledge_parity.py``; these are the batch's own
cases.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import func, select, text

from missionlink.adapters.db.core_tables import (
    idempotency_keys,
    mission_totals,
    outbox,
    pledges,
    wallets,
)
from missionlink.bootstrap import Container
from missionlink.domain import events as topics
from missionlink.domain.clock import FrozenClock
from missionlink.domain.errors import DomainError
from missionlink.migrations.earlier import core_revision
from missionlink.migrations.runner import alembic_config
from missionlink.services.pledges import PledgeFailed, PostgresPledgeDesk
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up

#: Batches are the PostgreSQL desk's; SQLite runs one transaction per pledge.
pytestmark = pytest.mark.parametrize(
    "database_urls", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


async def _fans(client: httpx.AsyncClient, container: Container, n: int,
                cash: int) -> list[Actor]:
    fans = [await make_user(container) for _ in range(n)]
    for fan in fans:
        await top_up(client, fan, cash)
    return fans


def _place(desk: PostgresPledgeDesk, clock: FrozenClock, actor: Actor, mission_id: int,
           amount: int, key: str | None = None) -> Any:
    return desk.place(now=clock.now(), user_id=actor.id, mission_id=mission_id,
                      amount=amount, key=key, fingerprint=f"fp-{actor.id}-{amount}")


async def _mission(client: httpx.AsyncClient, container: Container
                   ) -> tuple[Actor, dict[str, Any]]:
    streamer = await make_user(container, "streamer")
    creator = await make_user(container)
    await top_up(client, creator, 10_000)
    return streamer, await propose(client, creator, streamer, amount=10_000, duration=7_200)


async def _total(container: Container, mission_id: int) -> tuple[int, int, int]:
    async with container.core_db.read() as conn:
        amount, count = (await conn.execute(
            select(func.coalesce(func.sum(mission_totals.c.amount), 0),
                   func.coalesce(func.sum(mission_totals.c.pledges), 0))
            .where(mission_totals.c.mission_id == mission_id))).one()
        rows = await conn.scalar(select(func.count()).select_from(pledges)
                                 .where(pledges.c.mission_id == mission_id))
    return int(amount), int(count), int(rows or 0)


async def test_one_batch_answers_each_pledge_on_its_own(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer, mission = await _mission(client, container)
    fans = await _fans(client, container, 6, 5_000)
    poor = await make_user(container)
    desk = PostgresPledgeDesk(container.core_db, container.settings)
    desk.max_running = 1  # the first pledge runs alone; the rest wait and go together
    base, count, rows = await _total(container, mission["id"])  # the proposer's own pledge

    results = await asyncio.gather(
        *(_place(desk, clock, fan, mission["id"], 1_000, key=f"k{n}")
          for n, fan in enumerate(fans)),
        _place(desk, clock, poor, mission["id"], 1_000),                 # no money
        _place(desk, clock, streamer, mission["id"], 1_000),             # own mission
        _place(desk, clock, fans[0], 2**62, 1_000),                      # no such mission
        _place(desk, clock, fans[1], mission["id"], 1_000, key="x" * 300),  # DB error
        return_exceptions=True,
    )

    created, refused = results[:6], results[6:]
    assert all(not isinstance(r, BaseException) and r.status_code == 201 for r in created)
    assert [type(r).__name__ for r in refused] == [
        "InsufficientFunds", "Forbidden", "NotFound", "PledgeFailed"], refused
    assert all(isinstance(r, DomainError) for r in refused[:3])
    assert isinstance(refused[3], PledgeFailed)
    # Each created pledge shows the total after it; the last one shows them all.
    totals = sorted(r.body["total_pledged"] for r in created)  # type: ignore[union-attr]
    assert totals == [base + 1_000 * n for n in range(1, 7)]
    assert await _total(container, mission["id"]) == (base + 6_000, count + 6, rows + 6)
    async with container.core_db.read() as conn:
        stored = await conn.scalar(select(func.count()).select_from(idempotency_keys)
                                   .where(idempotency_keys.c.status_code == 201))
    assert stored == 6
    await settle_all(container)
    await assert_ledger_ok(container)


async def _cash(container: Container, actor: Actor) -> int:
    async with container.core_db.read() as conn:
        return int(await conn.scalar(select(wallets.c.cash_balance)
                                     .where(wallets.c.user_id == actor.id)) or 0)


async def _stored_keys(container: Container, actor: Actor) -> dict[str, int | None]:
    async with container.core_db.read() as conn:
        rows = await conn.execute(select(idempotency_keys.c.key, idempotency_keys.c.status_code)
                                  .where(idempotency_keys.c.user_id == actor.id))
    return {r.key: r.status_code for r in rows}


async def _events(container: Container, mission_id: int) -> list[dict[str, Any]]:
    async with container.core_db.read() as conn:
        rows = await conn.execute(select(outbox.c.payload)
                                  .where(outbox.c.topic == topics.PLEDGE_CREATED)
                                  .order_by(outbox.c.id))
    return [dict(r.payload) for r in rows if r.payload["mission_id"] == mission_id]


async def test_one_wallet_and_one_mission_in_a_batch_mixing_placed_refused_and_replayed(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """Each pledge is decided on its own, in the batch's order, as if the batch had been
    applied one pledge at a time."""
    streamer, mission = await _mission(client, container)
    (proposer,) = await _fans(client, container, 1, 10_000)
    closed = await propose(client, proposer, streamer, amount=10_000, duration=7_200)
    r = await client.post(f"/api/v1/missions/{closed['id']}/reject", headers=streamer.headers)
    assert r.status_code == 200, r.text
    opener, fan, other = await _fans(client, container, 3, 6_000)
    desk = PostgresPledgeDesk(container.core_db, container.settings)
    desk.max_running = 1
    done = await _place(desk, clock, fan, mission["id"], 1_000, key="done")
    assert (await _place(desk, clock, fan, mission["id"], 1_000, key="done2")).status_code == 201
    base, count, rows = await _total(container, mission["id"])
    events_before = len(await _events(container, mission["id"]))
    assert await _cash(container, fan) == 4_000

    # The opener's pledge runs alone; the others wait and go together, the fan's in this
    # order (the batch is sorted by wallet, keeping each wallet's order).
    results = await asyncio.gather(
        _place(desk, clock, opener, mission["id"], 1_000),
        _place(desk, clock, fan, mission["id"], 1_000, key="a1"),    # placed: 1,000 of 4,000
        _place(desk, clock, fan, mission["id"], 3_500, key="a2"),    # 3,000 left: refused
        _place(desk, clock, fan, mission["id"], 1_000, key="a3"),    # fits after a2's refusal
        _place(desk, clock, fan, mission["id"], 1_000, key="done"),  # replayed
        _place(desk, clock, fan, mission["id"], 2_000, key="done2"),  # reused for another body
        _place(desk, clock, fan, closed["id"], 1_000, key="a5"),     # mission rejected
        _place(desk, clock, other, mission["id"], 1_000),            # placed
        _place(desk, clock, streamer, mission["id"], 1_000),         # own channel
        return_exceptions=True,
    )

    names = [type(r).__name__ if isinstance(r, BaseException) else r.status_code
             for r in results]
    assert names == [201, 201, "InsufficientFunds", 201, 201, "IdempotencyMismatch",
                     "InvalidState", 201, "Forbidden"], results
    opened, a1, _, a3, replay, _, _, b, _ = results
    assert replay.replayed and replay.body == done.body  # type: ignore[union-attr]
    # Totals after each pledge, in the batch's order (the opener's batch committed first).
    assert [x.body["total_pledged"] for x in (opened, a1, a3, b)] == [  # type: ignore[union-attr]
        base + 1_000, base + 2_000, base + 3_000, base + 4_000]
    assert await _cash(container, fan) == 2_000
    assert await _total(container, mission["id"]) == (base + 4_000, count + 4, rows + 4)
    # A refused pledge leaves no key behind, so a retry with it runs afresh.
    assert await _stored_keys(container, fan) == {"done": 201, "done2": 201, "a1": 201,
                                                  "a3": 201}
    events = (await _events(container, mission["id"]))[events_before:]
    assert [(e["user_id"], e["amount"], e["total_pledged"]) for e in events] == [
        (opener.id, 1_000, base + 1_000), (fan.id, 1_000, base + 2_000),
        (fan.id, 1_000, base + 3_000), (other.id, 1_000, base + 4_000)]
    assert [e["pledge_id"] for e in events] == [
        x.body["id"] for x in (opened, a1, a3, b)]  # type: ignore[union-attr]
    await settle_all(container)
    await assert_ledger_ok(container)


async def test_a_repeated_key_in_one_burst_is_applied_once_and_replayed(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    _, mission = await _mission(client, container)
    (fan,) = await _fans(client, container, 1, 5_000)
    desk = PostgresPledgeDesk(container.core_db, container.settings)
    desk.max_running = 1
    base, count, rows = await _total(container, mission["id"])

    first, *again = await asyncio.gather(
        *(_place(desk, clock, fan, mission["id"], 1_000, key="same") for _ in range(5)))

    assert not first.replayed and all(r.replayed for r in again)
    assert all(r.body == first.body for r in again)
    assert await _total(container, mission["id"]) == (base + 1_000, count + 1, rows + 1)
    await assert_ledger_ok(container)


async def test_two_processes_pledging_to_one_hot_mission_never_deadlock(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """Two desks (as two API processes), each running several batches at once, all on one
    mission: the batches' total rows are locked in one order, so every pledge lands."""
    _, mission = await _mission(client, container)
    fans = await _fans(client, container, 40, 6_000)
    desks = [PostgresPledgeDesk(container.core_db, container.settings) for _ in range(2)]
    for desk in desks:
        desk.max_batch = 8
    base, count, rows = await _total(container, mission["id"])

    rounds = 5
    results = await asyncio.gather(*(
        _place(desks[(n + r) % 2], clock, fan, mission["id"], 1_000 + n, key=f"r{r}")
        for r in range(rounds) for n, fan in enumerate(fans)))

    expected = base + rounds * sum(1_000 + n for n in range(len(fans)))
    assert all(r.status_code == 201 and not r.replayed for r in results)
    # Each shows the total it could see: its own batch plus what had committed by then
    # (the other process's last batch may commit after it looked).
    assert max(r.body["total_pledged"] for r in results) <= expected
    assert await _total(container, mission["id"]) == (expected, count + rounds * len(fans),
                                                      rows + rounds * len(fans))
    await settle_all(container)
    await assert_ledger_ok(container)


async def test_a_batch_waiting_for_a_locked_mission_holds_no_wallet_yet(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """Settlement holds a mission, then takes wallets. A batch locks all its missions
    before any wallet, so while it waits on that mission the wallets are free and the
    two never wait on each other in a cycle."""
    _, first = await _mission(client, container)
    _, second = await _mission(client, container)
    opener, u1, u2 = await _fans(client, container, 3, 5_000)
    desk = PostgresPledgeDesk(container.core_db, container.settings)
    async with container.core_db.engine.connect() as other:
        await other.begin()
        await other.execute(text("SELECT id FROM missions WHERE id = :m FOR UPDATE"),
                            {"m": second["id"]})
        # One batch: [opener -> first, u1 -> first, u2 -> second].
        burst = asyncio.gather(_place(desk, clock, opener, first["id"], 1_000),
                               _place(desk, clock, u1, first["id"], 1_000),
                               _place(desk, clock, u2, second["id"], 1_000))
        await asyncio.sleep(0.3)
        # Would time out if the waiting batch held u1's wallet.
        await other.execute(text("SET LOCAL lock_timeout = '200ms'"))
        await other.execute(text("UPDATE wallets SET cash_balance = cash_balance "
                                 "WHERE user_id = :u"), {"u": u1.id})
        await other.commit()
        results = await burst
    assert [r.status_code for r in results] == [201, 201, 201]
    await settle_all(container)
    await assert_ledger_ok(container)


async def test_a_batch_in_a_deadlock_still_places_every_pledge(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """A transaction holds a wallet, then wants a mission the batch has locked: PostgreSQL
    fails the batch's waiting statement; whatever it undid (a pledge or the call), every
    pledge is placed once and the ledger balances."""
    _, mission = await _mission(client, container)
    u1, u2 = await _fans(client, container, 2, 5_000)
    desk = PostgresPledgeDesk(container.core_db, container.settings)
    base, count, rows = await _total(container, mission["id"])
    async with container.core_db.engine.connect() as other:
        await other.begin()
        await other.execute(text("SELECT 1 FROM wallets WHERE user_id = :u FOR UPDATE"),
                            {"u": u1.id})
        burst = asyncio.gather(_place(desk, clock, u1, mission["id"], 1_000),
                               _place(desk, clock, u2, mission["id"], 1_000))
        await asyncio.sleep(0.3)  # the batch holds the mission and waits on u1's wallet
        await other.execute(text("SELECT id FROM missions WHERE id = :m FOR UPDATE"),
                            {"m": mission["id"]})
        await other.commit()
        results = await burst
    assert [r.status_code for r in results] == [201, 201]
    assert await _total(container, mission["id"]) == (base + 2_000, count + 2, rows + 2)
    await settle_all(container)
    await assert_ledger_ok(container)


async def test_a_pledge_whose_caller_left_before_its_batch_is_never_applied(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    _, mission = await _mission(client, container)
    first, gone = await _fans(client, container, 2, 5_000)
    desk = PostgresPledgeDesk(container.core_db, container.settings)
    desk.max_running = 1
    base, count, rows = await _total(container, mission["id"])
    running = asyncio.ensure_future(_place(desk, clock, first, mission["id"], 1_000))
    await asyncio.sleep(0)  # its batch has started; the next pledge has to wait
    waiting = asyncio.ensure_future(_place(desk, clock, gone, mission["id"], 1_000))
    await asyncio.sleep(0)
    assert len(desk._waiting) == 1
    waiting.cancel()
    assert (await running).status_code == 201
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0.2)  # time for any batch that could still carry it
    assert desk._waiting == [] and not desk._running
    assert await _total(container, mission["id"]) == (base + 1_000, count + 1, rows + 1)
    await assert_ledger_ok(container)


@pytest.mark.parametrize("settings_overrides", [{"db_lock_timeout_ms": 300}])
async def test_a_keyless_pledge_behind_a_locked_wallet_is_a_503_and_applies_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, mission = await _mission(client, container)
    (fan,) = await _fans(client, container, 1, 5_000)
    path = f"/api/v1/missions/{mission['id']}/pledges"
    before = await _total(container, mission["id"])
    async with container.core_db.engine.connect() as holder:
        await holder.begin()
        await holder.execute(text("SELECT 1 FROM wallets WHERE user_id = :u FOR UPDATE"),
                             {"u": fan.id})
        r = await client.post(path, json={"amount": 1_000}, headers=fan.headers)
        await holder.rollback()
    # Not "a request with this Idempotency-Key is still running": there is no key.
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    assert r.json()["type"].endswith("/service-unavailable")
    assert await _total(container, mission["id"]) == before
    r = await client.post(path, json={"amount": 1_000}, headers=fan.headers)
    assert r.status_code == 201, r.text
    await assert_ledger_ok(container)


async def _function_source(container: Container) -> str:
    async with container.core_db.read() as conn:
        return str(await conn.scalar(text(
            "SELECT prosrc FROM pg_proc WHERE proname = 'missionlink_place_pledges'")))


async def test_migrations_0018_and_0019_switch_the_function_and_keys_survive(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """0018 put the set pass in, 0019 takes it out again (0016's per-pledge body, the
    missions locked first); a key stored under one body replays under the other."""
    set_based = core_revision("0018_set_based_pledge_batches")
    per_pledge = core_revision("0019_per_pledge_batches_again")
    cfg = alembic_config("core", container.settings.core_url)
    assert await _function_source(container) in per_pledge.function_sql()
    await container.core_db.dispose()
    await asyncio.to_thread(command.downgrade, cfg, "0018")
    assert await _function_source(container) in set_based.function_sql()
    _, mission = await _mission(client, container)
    (fan,) = await _fans(client, container, 1, 5_000)
    desk = PostgresPledgeDesk(container.core_db, container.settings)
    assert (await _place(desk, clock, fan, mission["id"], 1_000, key="down")).status_code == 201

    await container.core_db.dispose()
    await asyncio.to_thread(command.upgrade, cfg, "head")
    assert await _function_source(container) in per_pledge.function_sql()
    again = await _place(desk, clock, fan, mission["id"], 1_000, key="down")
    assert again.replayed
    assert (await _place(desk, clock, fan, mission["id"], 1_000, key="up")).status_code == 201
    await settle_all(container)
    await assert_ledger_ok(container)
