"""Refunds of top-ups to the original payment method, against the local fakes of PortOne's
and Stripe's HTTP APIs (through the official SDKs); webhooks are signed with the
providers' real algorithms. Every test ends with the ledger reconciled."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import httpx
import pytest

from missionlink.adapters.payments.providers import SandboxProvider
from missionlink.api.app import create_app
from missionlink.bootstrap import Container
from missionlink.services import refunds
from tests.e2e.test_payments import (  # noqa: F401  (fixtures shared with the top-up tests)
    Provider,
    cash,
    confirm,
    deliver,
    fakes,
    open_topup,
    payer,
    provider,
    settings_overrides,
)
from tests.helpers import Actor, assert_ledger_ok, make_user, propose
from tests.payments import fakes as F

API = "/api/v1"


async def paid_topup(client: httpx.AsyncClient, prov: Provider, fan: Actor,
                     amount: int) -> dict[str, Any]:
    topup = await open_topup(client, fan, amount)
    prov.pay(topup["provider_payment_id"])
    assert (await confirm(client, fan, topup["id"])).json()["status"] == "completed"
    return topup


async def ask(client: httpx.AsyncClient, fan: Actor, topup_id: int, body: dict[str, Any],
              key: str | None = None) -> httpx.Response:
    headers = {**fan.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post(f"{API}/wallet/topups/{topup_id}/refunds", json=body,
                             headers=headers)


def refunds_at_provider(prov: Provider, topup: dict[str, Any]) -> list[tuple[int, str]]:
    """(amount, status) of each refund the provider holds for the top-up's payment."""
    pid = topup["provider_payment_id"]
    if prov.name == "portone":
        return [(c["totalAmount"], c["status"]) for c in prov.fakes.portone_cancellations(pid)]
    with prov.fakes.lock:
        return [(r["amount"], r["status"]) for r in prov.fakes.stripe_refunds.values()
                if r["payment_intent"] == pid]


def refund_event(prov: Provider, topup: dict[str, Any], refund_id: str,
                 ) -> tuple[bytes, dict[str, str]]:
    if prov.name == "portone":
        left = prov.fakes.portone[topup["provider_payment_id"]]["status"]
        kind = "Transaction.Cancelled" if left == "CANCELLED" else "Transaction.PartialCancelled"
        return F.portone_webhook(kind, topup["provider_payment_id"])
    return F.stripe_refund_webhook(prov.fakes, refund_id)


@pytest.fixture(autouse=True)
def refunds_succeed(fakes: F.Fakes) -> Any:  # noqa: F811
    fakes.refund_mode, fakes.lose_refund_answer = "succeeded", False
    yield
    fakes.refund_mode, fakes.lose_refund_answer = "succeeded", False


async def test_a_full_refund_goes_back_to_the_payment_method(
    client: httpx.AsyncClient, container: Container, payer: Provider,  # noqa: F811
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 30_000)
    listed = (await client.get(f"{API}/wallet/topups", headers=fan.headers)).json()["items"]
    assert listed[0]["refundable"] == 30_000
    r = await ask(client, fan, topup["id"], {"reason": "잘못 충전했어요"})
    assert r.status_code == 202, r.text
    refund = r.json()
    assert (refund["amount"], refund["state"], refund["topup_id"]) == (
        30_000, "succeeded", topup["id"])
    assert refund["provider_refund_id"] and refund["settled_at"]
    assert await cash(client, fan) == 0
    assert refunds_at_provider(payer, topup) == [
        (30_000, "SUCCEEDED" if payer.name == "portone" else "succeeded")]
    one = (await client.get(f"{API}/wallet/topups/{topup['id']}/refunds",
                            headers=fan.headers)).json()
    assert one == {"items": [refund], "refundable": 0}
    mine = (await client.get(f"{API}/wallet/refunds", headers=fan.headers)).json()["items"]
    assert [x["id"] for x in mine] == [refund["id"]]
    # Nothing is left to refund, and the journal shows the money leaving the wallet.
    again = await ask(client, fan, topup["id"], {})
    assert again.status_code == 409 and again.json()["refundable"] == 0
    assert again.json()["type"].endswith("/refund-exceeds-refundable")
    lines = (await client.get(f"{API}/wallet/transactions", headers=fan.headers)).json()
    assert lines["items"][0]["kind"] == "topup_refund"
    assert lines["items"][0]["amount"] == -30_000
    other = await make_user(container)
    assert (await ask(client, other, topup["id"], {})).status_code == 404
    assert (await client.get(f"{API}/wallet/topups/{topup['id']}/refunds",
                             headers=other.headers)).status_code == 404
    await assert_ledger_ok(container)


async def test_partial_refunds_are_limited_by_the_spent_cash(
    client: httpx.AsyncClient, container: Container, payer: Provider,  # noqa: F811
) -> None:
    fan, streamer = await make_user(container), await make_user(container, "streamer")
    topup = await paid_topup(client, payer, fan, 20_000)
    await propose(client, fan, streamer, amount=12_000)  # spends 12,000 of the top-up
    r = await ask(client, fan, topup["id"], {"amount": 9_000})
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/refund-exceeds-refundable")
    assert r.json()["refundable"] == 8_000
    first = await ask(client, fan, topup["id"], {"amount": 5_000})
    assert first.status_code == 202 and first.json()["state"] == "succeeded"
    rest = await ask(client, fan, topup["id"], {})
    assert rest.status_code == 202 and rest.json()["amount"] == 3_000
    assert await cash(client, fan) == 0
    assert sorted(a for a, _ in refunds_at_provider(payer, topup)) == [3_000, 5_000]
    await assert_ledger_ok(container)


async def test_a_retried_request_refunds_once(
    client: httpx.AsyncClient, container: Container, payer: Provider,  # noqa: F811
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 10_000)
    payer.fakes.refund_mode = "pending"
    first = await ask(client, fan, topup["id"], {"amount": 4_000}, key="refund-1")
    assert first.status_code == 202 and first.json()["state"] == "pending"
    replay = await ask(client, fan, topup["id"], {"amount": 4_000}, key="refund-1")
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    # Another refund of the same top-up waits for the pending one to settle.
    other = await ask(client, fan, topup["id"], {"amount": 1_000}, key="refund-2")
    assert other.status_code == 409 and other.json()["type"].endswith("/topup-not-refundable")
    assert len(refunds_at_provider(payer, topup)) == 1
    assert await cash(client, fan) == 6_000
    await assert_ledger_ok(container)


async def test_a_refusing_provider_reverses_the_held_cash(
    client: httpx.AsyncClient, container: Container, payer: Provider,  # noqa: F811
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 10_000)
    payer.fakes.refund_mode = "refused"
    r = await ask(client, fan, topup["id"], {"amount": 7_000})
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "failed" and r.json()["failure_reason"]
    assert await cash(client, fan) == 10_000
    kinds = [x["kind"] for x in (await client.get(f"{API}/wallet/transactions",
                                                  headers=fan.headers)).json()["items"]]
    assert kinds[:2] == ["topup_refund_reversal", "topup_refund"]
    # A failed refund holds nothing: the whole top-up may be asked for again.
    payer.fakes.refund_mode = "succeeded"
    assert (await ask(client, fan, topup["id"], {})).json()["amount"] == 10_000
    await assert_ledger_ok(container)


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
async def test_the_webhook_settles_a_pending_refund(
    client: httpx.AsyncClient, container: Container, payer: Provider,  # noqa: F811
    outcome: str,
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 10_000)
    payer.fakes.refund_mode = "pending"
    refund = (await ask(client, fan, topup["id"], {"amount": 6_000})).json()
    assert refund["state"] == "pending" and refund["provider_refund_id"]
    assert await cash(client, fan) == 4_000
    await assert_ledger_ok(container)
    payer.fakes.settle_refund(payer.name, refund["provider_refund_id"], outcome)
    signed = refund_event(payer, topup, refund["provider_refund_id"])
    r = await deliver(client, payer, signed)
    assert r.status_code == 200, r.text
    assert (await deliver(client, payer, signed)).status_code == 200  # redelivered
    state = (await client.get(f"{API}/wallet/refunds", headers=fan.headers)).json()["items"]
    assert [x["state"] for x in state] == [outcome]
    assert await cash(client, fan) == (4_000 if outcome == "succeeded" else 10_000)
    await assert_ledger_ok(container)


async def test_payments_sync_settles_a_refund_whose_answer_was_lost(
    client: httpx.AsyncClient, container: Container, payer: Provider,  # noqa: F811
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 8_000)
    payer.fakes.lose_refund_answer = True
    refund = (await ask(client, fan, topup["id"], {})).json()
    assert refund["state"] == "pending" and refund["provider_refund_id"] is None
    payer.fakes.lose_refund_answer = False
    clock: Any = container.clock
    assert await refunds.sync_refunds(container.core_db, container.payments, now=clock.now(),
                                      older_than=timedelta(minutes=10), limit=10) == {}
    clock.advance(700)
    counts = await refunds.sync_refunds(container.core_db, container.payments,
                                        now=clock.now(), older_than=timedelta(minutes=10),
                                        limit=10)
    assert counts == {"succeeded": 1}
    # Asked twice, refunded once: the retry found the first refund at the provider.
    assert [a for a, _ in refunds_at_provider(payer, topup)] == [8_000]
    assert await cash(client, fan) == 0
    await assert_ledger_ok(container)


async def test_the_refund_window_closes(
    client: httpx.AsyncClient, container: Container, payer: Provider,  # noqa: F811
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 5_000)
    clock: Any = container.clock
    clock.advance(timedelta(days=180).total_seconds())
    r = await ask(client, fan, topup["id"], {})
    assert r.status_code == 409 and r.json()["type"].endswith("/refund-window-closed")
    item = (await client.get(f"{API}/wallet/topups/{topup['id']}", headers=fan.headers)).json()
    assert item["refundable"] == 0
    pending = await open_topup(client, fan, 5_000)
    r = await ask(client, fan, pending["id"], {})
    assert r.status_code == 409 and r.json()["type"].endswith("/topup-not-refundable")
    bad = await ask(client, fan, topup["id"], {"amount": "5000"})
    assert bad.status_code == 422
    assert await cash(client, fan) == 5_000
    await assert_ledger_ok(container)


async def test_the_sandbox_refunds_at_once(
    container: Container, provider: str,  # noqa: F811
) -> None:
    if provider != "portone":
        pytest.skip("the sandbox needs one run")
    sandboxed = dataclasses.replace(container, payments=SandboxProvider())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(sandboxed)),
                                 base_url="http://testserver") as plain:
        fan = await make_user(container)
        r = await plain.post(f"{API}/wallet/topups", json={"amount": 7_000},
                             headers=fan.headers)
        r = await ask(plain, fan, r.json()["id"], {"amount": 2_000})
        assert r.status_code == 202 and r.json()["state"] == "succeeded"
        assert await cash(plain, fan) == 5_000
    await assert_ledger_ok(container)
