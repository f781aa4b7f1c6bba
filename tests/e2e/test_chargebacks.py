"""Chargebacks: a provider takes a top-up back (a Stripe dispute, a PortOne cancellation we
did not make), reported by its signed webhook and fetched from the local fake of its API.

The wallet gives the money back from its cash as far as it goes and owes the rest (a
receivable, ``debt``); while it owes, pledges, proposals and bets are refused; a top-up or
POST /wallet/debt/repay pays the debt; a won dispute gives the money back. Every scenario
ends with the ledger reconciled.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from missionlink.bootstrap import Container
from tests.e2e import test_payments as payments
from tests.e2e.test_payments import API, Provider, cash, confirm, deliver, open_topup
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all
from tests.payments import fakes as F

# The payment tests' fixtures: both providers' fakes, and the settings that point at them.
fakes = payments.fakes
provider = payments.provider
settings_overrides = payments.settings_overrides
payer = payments.payer


async def paid_topup(client: httpx.AsyncClient, payer: Provider, user: Actor,
                     amount: int) -> dict[str, Any]:
    topup = await open_topup(client, user, amount)
    payer.pay(topup["provider_payment_id"])
    r = await confirm(client, user, topup["id"])
    assert r.json()["status"] == "completed", r.text
    return topup


def take_back(payer: Provider, pid: str, amount: int) -> tuple[bytes, dict[str, str]]:
    """The provider takes ``amount`` back and says so in its signed webhook."""
    if payer.name == "stripe":
        dispute = payer.fakes.stripe_dispute(pid, amount=amount)
        return F.stripe_webhook("charge.dispute.created", dispute)
    payer.fakes.portone_take_back(pid, amount)
    kind = ("Transaction.Cancelled" if payer.fakes.portone[pid]["status"] == "CANCELLED"
            else "Transaction.PartialCancelled")
    return F.portone_webhook(kind, pid)


async def wallet_of(client: httpx.AsyncClient, user: Actor) -> dict[str, int]:
    r = await client.get(f"{API}/wallet", headers=user.headers)
    assert r.status_code == 200, r.text
    body: dict[str, int] = r.json()
    return body


async def chargebacks_of(client: httpx.AsyncClient, user: Actor) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/wallet/chargebacks", headers=user.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def assert_in_debt(r: httpx.Response, debt: int) -> None:
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"].endswith("/wallet-in-debt") and problem["debt"] == debt, problem


async def test_a_chargeback_takes_the_cash_back_once(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 30_000)
    signed = take_back(payer, topup["provider_payment_id"], 30_000)
    r = await deliver(client, payer, signed)
    assert r.status_code == 200, r.text
    assert await wallet_of(client, fan) == {"cash_balance": 0, "points_balance": 1000,
                                            "debt": 0}
    [cb] = await chargebacks_of(client, fan)
    assert (cb["topup_id"], cb["amount"]) == (topup["id"], 30_000)
    # A dispute is open at Stripe while it runs; PortOne's cancellation is final.
    assert cb["state"] == ("opened" if payer.name == "stripe" else "lost")
    # The provider delivers it again, and sends another event about it: nothing more.
    assert (await deliver(client, payer, signed)).status_code == 200
    if payer.name == "stripe":
        again = F.stripe_webhook("charge.dispute.updated",
                                 payer.fakes.disputes[cb["provider_dispute_id"]])
    else:
        again = F.portone_webhook("Transaction.Cancelled", topup["provider_payment_id"])
    assert (await deliver(client, payer, again)).status_code == 200
    assert await cash(client, fan) == 0
    assert len(await chargebacks_of(client, fan)) == 1
    await assert_ledger_ok(container)


async def test_spent_money_becomes_debt_that_blocks_pledging_until_repaid(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    streamer, fan = await make_user(container, "streamer"), await make_user(container)
    topup = await paid_topup(client, payer, fan, 30_000)
    mission = await propose(client, fan, streamer, amount=20_000)
    r = await deliver(client, payer, take_back(payer, topup["provider_payment_id"], 30_000))
    assert r.status_code == 200, r.text
    # The 10,000 left in cash goes back, the 20,000 pledged is owed: never negative cash.
    assert await wallet_of(client, fan) == {"cash_balance": 0, "points_balance": 1000,
                                            "debt": 20_000}
    await assert_ledger_ok(container)

    pledge = await client.post(f"{API}/missions/{mission['id']}/pledges",
                               json={"amount": 1_000}, headers=fan.headers)
    assert_in_debt(pledge, 20_000)
    bet = await client.post(f"{API}/missions/{mission['id']}/bets",
                            json={"side": "success", "points": 100}, headers=fan.headers)
    assert_in_debt(bet, 20_000)
    other = await make_user(container, "streamer")
    proposal = await client.post(f"{API}/missions", headers=fan.headers, json={
        "streamer_id": other.id, "title": "t", "description": "", "amount": 1_000,
        "duration_seconds": 3600})
    assert_in_debt(proposal, 20_000)
    # Nothing to repay with yet.
    r = await client.post(f"{API}/wallet/debt/repay", headers=fan.headers)
    assert r.status_code == 409 and r.json()["type"].endswith("/insufficient-funds")

    # The mission is rejected: its 20,000 comes back to cash, and the fan repays with it.
    assert (await client.post(f"{API}/missions/{mission['id']}/reject",
                              headers=streamer.headers)).status_code == 200
    await settle_all(container)
    assert await wallet_of(client, fan) == {"cash_balance": 20_000, "points_balance": 1000,
                                            "debt": 20_000}
    key = {**fan.headers, "Idempotency-Key": "repay-1"}
    r = await client.post(f"{API}/wallet/debt/repay", headers=key)
    assert r.status_code == 200, r.text
    assert r.json() == {"repaid": 20_000, "cash_balance": 0, "debt": 0}
    replay = await client.post(f"{API}/wallet/debt/repay", headers=key)
    assert replay.json() == r.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert await wallet_of(client, fan) == {"cash_balance": 0, "points_balance": 1000,
                                            "debt": 0}
    await assert_ledger_ok(container)


async def test_a_new_top_up_pays_the_debt_first(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    streamer, fan = await make_user(container, "streamer"), await make_user(container)
    topup = await paid_topup(client, payer, fan, 10_000)
    mission = await propose(client, fan, streamer, amount=10_000)
    await deliver(client, payer, take_back(payer, topup["provider_payment_id"], 10_000))
    assert (await wallet_of(client, fan))["debt"] == 10_000

    await paid_topup(client, payer, fan, 4_000)
    assert await wallet_of(client, fan) == {"cash_balance": 0, "points_balance": 1000,
                                            "debt": 6_000}
    await paid_topup(client, payer, fan, 8_000)
    assert await wallet_of(client, fan) == {"cash_balance": 2_000, "points_balance": 1000,
                                            "debt": 0}
    r = await client.post(f"{API}/missions/{mission['id']}/pledges", json={"amount": 1_000},
                          headers=fan.headers)
    assert r.status_code == 201, r.text
    lines = (await client.get(f"{API}/wallet/transactions", headers=fan.headers)).json()
    assert [x["kind"] for x in lines["items"]].count("debt_repayment") == 2
    await assert_ledger_ok(container)


async def test_never_more_than_the_top_up_is_taken_back(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 30_000)
    await paid_topup(client, payer, fan, 20_000)
    pid = topup["provider_payment_id"]
    await deliver(client, payer, take_back(payer, pid, 20_000))
    await deliver(client, payer, take_back(payer, pid, 20_000))
    taken = sorted(cb["amount"] for cb in await chargebacks_of(client, fan))
    assert taken == [10_000, 20_000]
    assert await cash(client, fan) == 20_000
    await assert_ledger_ok(container)


@pytest.mark.parametrize("provider", ["stripe"])
async def test_a_won_dispute_gives_the_money_back_paying_the_debt_first(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    streamer, fan = await make_user(container, "streamer"), await make_user(container)
    topup = await paid_topup(client, payer, fan, 30_000)
    await propose(client, fan, streamer, amount=20_000)
    pid = topup["provider_payment_id"]
    dispute = payer.fakes.stripe_dispute(pid)
    await deliver(client, payer, F.stripe_webhook("charge.dispute.created", dispute))
    assert await wallet_of(client, fan) == {"cash_balance": 0, "points_balance": 1000,
                                            "debt": 20_000}
    won = payer.fakes.stripe_dispute(pid, dispute_id=dispute["id"], status="won")
    signed = F.stripe_webhook("charge.dispute.closed", won)
    r = await deliver(client, payer, signed)
    assert r.status_code == 200 and r.json()["state"] == "won" and r.json()["applied"]
    assert await wallet_of(client, fan) == {"cash_balance": 10_000, "points_balance": 1000,
                                            "debt": 0}
    assert (await deliver(client, payer, signed)).json()["applied"] is False
    assert [cb["state"] for cb in await chargebacks_of(client, fan)] == ["won"]
    await assert_ledger_ok(container)

    # A dispute first heard of when already closed: lost takes, won takes and gives back;
    # an inquiry takes nothing.
    lost_topup = await paid_topup(client, payer, fan, 5_000)
    lost = payer.fakes.stripe_dispute(lost_topup["provider_payment_id"], status="lost")
    await deliver(client, payer, F.stripe_webhook("charge.dispute.closed", lost))
    won_topup = await paid_topup(client, payer, fan, 6_000)
    late_win = payer.fakes.stripe_dispute(won_topup["provider_payment_id"], status="won")
    await deliver(client, payer, F.stripe_webhook("charge.dispute.closed", late_win))
    inquiry = payer.fakes.stripe_dispute(won_topup["provider_payment_id"],
                                         status="warning_needs_response")
    r = await deliver(client, payer, F.stripe_webhook("charge.dispute.created", inquiry))
    assert r.json() == {"applied": False, "ignored": True}
    assert await cash(client, fan) == 16_000
    states = sorted(cb["state"] for cb in await chargebacks_of(client, fan))
    assert states == ["lost", "won", "won"]
    await assert_ledger_ok(container)


@pytest.mark.parametrize("provider", ["portone"])
async def test_our_own_cancellations_are_no_chargeback(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 10_000)
    pid = topup["provider_payment_id"]
    payer.fakes.portone_take_back(pid, 4_000, trigger="API", reason="환불 요청")
    r = await deliver(client, payer, F.portone_webhook("Transaction.PartialCancelled", pid))
    assert r.status_code == 200, r.text
    assert await chargebacks_of(client, fan) == []
    assert await cash(client, fan) == 10_000
    await assert_ledger_ok(container)


@pytest.mark.parametrize("provider", ["stripe"])
async def test_a_wallet_in_debt_refunds_nothing_until_repaid(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    streamer, fan = await make_user(container, "streamer"), await make_user(container)
    disputed = await paid_topup(client, payer, fan, 30_000)
    other = await paid_topup(client, payer, fan, 10_000)
    mission = await propose(client, fan, streamer, amount=40_000)
    dispute = payer.fakes.stripe_dispute(disputed["provider_payment_id"])
    await deliver(client, payer, F.stripe_webhook("charge.dispute.created", dispute))
    assert (await client.post(f"{API}/missions/{mission['id']}/reject",
                              headers=streamer.headers)).status_code == 200
    await settle_all(container)
    assert await wallet_of(client, fan) == {"cash_balance": 40_000, "points_balance": 1000,
                                            "debt": 30_000}
    listed = (await client.get(f"{API}/wallet/topups/{other['id']}/refunds",
                               headers=fan.headers)).json()
    assert listed["refundable"] == 0
    r = await client.post(f"{API}/wallet/topups/{other['id']}/refunds", json={},
                          headers=fan.headers)
    assert_in_debt(r, 30_000)
    assert (await client.post(f"{API}/wallet/debt/repay", headers=fan.headers)).json() == {
        "repaid": 30_000, "cash_balance": 10_000, "debt": 0}
    r = await client.post(f"{API}/wallet/topups/{other['id']}/refunds", json={},
                          headers=fan.headers)
    assert r.status_code == 202, r.text
    await assert_ledger_ok(container)


@pytest.mark.parametrize("provider", ["stripe"])
async def test_a_refund_offers_what_the_chargebacks_left(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    topup = await paid_topup(client, payer, fan, 30_000)
    await deliver(client, payer, take_back(payer, topup["provider_payment_id"], 10_000))
    assert await cash(client, fan) == 20_000
    refunds = f"{API}/wallet/topups/{topup['id']}/refunds"
    assert (await client.get(refunds, headers=fan.headers)).json()["refundable"] == 20_000
    r = await client.post(refunds, json={"amount": 20_001}, headers=fan.headers)
    assert r.status_code == 409 and r.json()["refundable"] == 20_000, r.text
    r = await client.post(refunds, json={"amount": 20_000}, headers=fan.headers)
    assert r.status_code == 202, r.text
    await settle_all(container)
    assert await cash(client, fan) == 0
    await assert_ledger_ok(container)


@pytest.mark.parametrize("provider", ["stripe"])
async def test_a_refund_made_in_the_stripe_dashboard_is_taken_back_and_ours_is_not(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    """Money refunded at Stripe without our API (the dashboard) left the platform: it is
    a chargeback, final at once. A refund the fan asked for through us is not."""
    streamer, fan = await make_user(container, "streamer"), await make_user(container)
    topup = await paid_topup(client, payer, fan, 30_000)
    pid = topup["provider_payment_id"]
    await propose(client, fan, streamer, amount=20_000)
    r = await client.post(f"{API}/wallet/topups/{topup['id']}/refunds", json={"amount": 4_000},
                          headers=fan.headers)
    assert r.status_code == 202, r.text
    [ours] = [x for x in payer.fakes.stripe_refunds.values() if x["payment_intent"] == pid]
    r = await deliver(client, payer, F.stripe_refund_webhook(payer.fakes, ours["id"],
                                                             "charge.refunded"))
    assert r.status_code == 200, r.text
    assert await chargebacks_of(client, fan) == []
    assert await wallet_of(client, fan) == {"cash_balance": 6_000, "points_balance": 1000,
                                            "debt": 0}

    # Still pending at Stripe: nothing is taken yet.
    pending = payer.fakes.stripe_dashboard_refund(pid, 26_000, status="pending")
    signed = F.stripe_refund_webhook(payer.fakes, pending["id"], "refund.created")
    assert (await deliver(client, payer, signed)).status_code == 200
    assert await chargebacks_of(client, fan) == []
    payer.fakes.settle_refund("stripe", pending["id"], "succeeded")
    signed = F.stripe_refund_webhook(payer.fakes, pending["id"], "charge.refunded")
    assert (await deliver(client, payer, signed)).status_code == 200
    [cb] = await chargebacks_of(client, fan)
    assert (cb["topup_id"], cb["amount"], cb["state"], cb["provider_dispute_id"]) == (
        topup["id"], 26_000, "lost", pending["id"])
    # The 6,000 of cash goes back, the 20,000 pledged is owed.
    assert await wallet_of(client, fan) == {"cash_balance": 0, "points_balance": 1000,
                                            "debt": 20_000}
    # Delivered again: nothing more.
    assert (await deliver(client, payer, signed)).status_code == 200
    assert len(await chargebacks_of(client, fan)) == 1
    assert (await wallet_of(client, fan))["debt"] == 20_000
    await settle_all(container)
    await assert_ledger_ok(container)


@pytest.mark.parametrize("provider", ["stripe"])
async def test_a_payment_without_refunds_is_not_asked_for_its_refunds(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    """The payment is fetched with its charge expanded: refunds are listed only when the
    charge shows a refunded amount, so confirming a top-up costs one call to Stripe."""
    fan = await make_user(container)
    payer.fakes.requests.clear()
    await paid_topup(client, payer, fan, 10_000)
    reads = [path for method, path in payer.fakes.requests if method == "GET"]
    assert reads and all(path.startswith("/v1/payment_intents/") for path in reads), reads
    await assert_ledger_ok(container)
