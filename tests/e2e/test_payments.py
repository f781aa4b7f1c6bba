"""Real money in: PortOne V2 and Stripe top-ups against local fakes of their HTTP APIs.

The application talks to the fakes through the official SDKs (each provider's base URL is
a setting); webhooks are signed with the providers' real algorithms and verified by the
SDKs' own functions. Every test ends with the ledger reconciled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, update

from missionlink import cli
from missionlink.adapters.db.core_tables import topups, transfers
from missionlink.adapters.payments.providers import SandboxProvider
from missionlink.api.app import create_app
from missionlink.api.routers import pages
from missionlink.bootstrap import Container
from missionlink.services import wallet
from missionlink.services.reconcile import check
from missionlink.services.wallet import kst_day
from tests.helpers import Actor, assert_ledger_ok, make_user
from tests.payments import fakes as F

API = "/api/v1"


@pytest.fixture(scope="module")
def fakes() -> Iterator[F.Fakes]:
    with F.serve() as running:
        yield running


@pytest.fixture(params=["portone", "stripe"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides(provider: str, fakes: F.Fakes) -> dict[str, object]:
    if provider == "portone":
        return {"payment_provider": "portone", "portone_api_base_url": fakes.base_url,
                "portone_api_secret": F.PORTONE_SECRET,
                "portone_webhook_secret": F.PORTONE_WEBHOOK_SECRET,
                "portone_store_id": F.PORTONE_STORE, "portone_channel_key": "channel-key-test"}
    return {"payment_provider": "stripe", "stripe_api_base_url": fakes.base_url,
            "stripe_secret_key": F.STRIPE_SECRET, "stripe_publishable_key": "pk_test_ml",
            "stripe_webhook_secret": F.STRIPE_WEBHOOK_SECRET}


_PORTONE_EVENTS = {"paid": "Transaction.Paid", "failed": "Transaction.Failed",
                   "cancelled": "Transaction.Cancelled",
                   "virtual_account": "Transaction.VirtualAccountIssued"}
_STRIPE_EVENTS = {"paid": "payment_intent.succeeded", "failed": "payment_intent.payment_failed",
                  "cancelled": "payment_intent.canceled"}


@dataclass
class Provider:
    """Plays the payer and the provider's back office for one provider."""

    name: str
    fakes: F.Fakes

    def pay(self, pid: str, *, amount: int | None = None, currency: str = "KRW") -> None:
        if self.name == "portone":
            self.fakes.portone_pay(pid, amount=amount, currency=currency)
        else:
            self.fakes.stripe_pay(pid, amount=amount, currency=currency.lower())

    def fail(self, pid: str) -> None:
        (self.fakes.portone_fail if self.name == "portone" else self.fakes.stripe_fail)(pid)

    def cancel(self, pid: str) -> None:
        (self.fakes.portone_cancel if self.name == "portone" else self.fakes.stripe_cancel)(pid)

    def webhook(self, what: str, pid: str, **kw: Any) -> tuple[bytes, dict[str, str]]:
        if self.name == "portone":
            return F.portone_webhook(_PORTONE_EVENTS[what], pid, **kw)
        with self.fakes.lock:
            intent = dict(self.fakes.stripe[pid])
        return F.stripe_webhook(_STRIPE_EVENTS[what], intent, **kw)

    @property
    def secret(self) -> str:
        return F.PORTONE_WEBHOOK_SECRET if self.name == "portone" else F.STRIPE_WEBHOOK_SECRET

    @property
    def wrong_secret(self) -> str:
        return "whsec_d3Jvbmcgc2VjcmV0IG9mIDMyIGJ5dGVzIGxvbmcgISE=" if self.name == "portone" \
            else "whsec_wrong"


@pytest.fixture
def payer(provider: str, fakes: F.Fakes) -> Provider:
    return Provider(provider, fakes)


async def open_topup(client: httpx.AsyncClient, user: Actor, amount: int) -> dict[str, Any]:
    r = await client.post(f"{API}/wallet/topups", json={"amount": amount}, headers=user.headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "pending" and body["currency"] == "KRW"
    return body


async def cash(client: httpx.AsyncClient, user: Actor) -> int:
    r = await client.get(f"{API}/wallet", headers=user.headers)
    return int(r.json()["cash_balance"])


async def confirm(client: httpx.AsyncClient, user: Actor, topup_id: int) -> httpx.Response:
    return await client.post(f"{API}/wallet/topups/{topup_id}/confirm", headers=user.headers)


async def deliver(client: httpx.AsyncClient, payer: Provider,
                  signed: tuple[bytes, dict[str, str]]) -> httpx.Response:
    body, headers = signed
    return await client.post(f"{API}/payments/webhook/{payer.name}", content=body,
                             headers=headers)


async def test_browser_return_confirms_by_asking_the_provider(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    topup = await open_topup(client, fan, 30_000)
    checkout = topup["checkout"]
    assert checkout["provider"] == payer.name and checkout["total_amount"] == 30_000
    if payer.name == "portone":
        assert checkout["payment_id"] == topup["provider_payment_id"]
        assert payer.fakes.portone[checkout["payment_id"]]["amount"] == 30_000  # pre-registered
    else:
        assert checkout["client_secret"].startswith(topup["provider_payment_id"])
        assert checkout["publishable_key"] == "pk_test_ml"
    # The browser says it is back, but nothing was paid: nothing is credited.
    r = await confirm(client, fan, topup["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["applied"] is False
    assert await cash(client, fan) == 0

    payer.pay(topup["provider_payment_id"])
    r = await confirm(client, fan, topup["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed" and r.json()["applied"] is True
    assert await cash(client, fan) == 30_000
    # Again, and the webhook arriving late: still credited once.
    r = await confirm(client, fan, topup["id"])
    assert r.json()["applied"] is False
    r = await deliver(client, payer, payer.webhook("paid", topup["provider_payment_id"]))
    assert r.status_code == 200, r.text
    assert r.json() == {"id": topup["id"], "status": "completed", "applied": False}
    assert await cash(client, fan) == 30_000

    listed = (await client.get(f"{API}/wallet/topups", headers=fan.headers)).json()["items"]
    assert [(t["id"], t["status"], t["amount"]) for t in listed] == [
        (topup["id"], "completed", 30_000)]
    one = await client.get(f"{API}/wallet/topups/{topup['id']}", headers=fan.headers)
    assert one.json()["completed_at"] is not None
    other = await make_user(container)
    assert (await confirm(client, other, topup["id"])).status_code == 404
    assert (await client.get(f"{API}/wallet/topups/{topup['id']}",
                             headers=other.headers)).status_code == 404
    await assert_ledger_ok(container)


async def test_webhook_alone_completes_and_duplicates_change_nothing(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    topup = await open_topup(client, fan, 12_000)
    payer.pay(topup["provider_payment_id"])
    signed = payer.webhook("paid", topup["provider_payment_id"])
    r = await deliver(client, payer, signed)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": topup["id"], "status": "completed", "applied": True}
    # The provider retries the very same delivery, and sends another event for it.
    assert (await deliver(client, payer, signed)).json()["applied"] is False
    again = await deliver(client, payer, payer.webhook("paid", topup["provider_payment_id"]))
    assert again.json()["applied"] is False
    assert await cash(client, fan) == 12_000
    await assert_ledger_ok(container)


@pytest.mark.parametrize("paid", [(9_999, "KRW"), (10_000, "USD")], ids=["amount", "currency"])
async def test_a_payment_not_as_asked_is_recorded_and_not_credited(
    client: httpx.AsyncClient, container: Container, payer: Provider, paid: tuple[int, str],
) -> None:
    fan = await make_user(container)
    topup = await open_topup(client, fan, 10_000)
    payer.pay(topup["provider_payment_id"], amount=paid[0], currency=paid[1])
    r = await confirm(client, fan, topup["id"])
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"].endswith("/payment-mismatch")
    assert f"{paid[0]} {paid[1]}" in problem["detail"] and "10000 KRW" in problem["detail"]
    row = (await client.get(f"{API}/wallet/topups/{topup['id']}", headers=fan.headers)).json()
    assert row["status"] == "rejected"
    assert (row["reported_amount"], row["reported_currency"]) == paid
    # The webhook is acknowledged (the provider delivered it fine) and changes nothing.
    r = await deliver(client, payer, payer.webhook("paid", topup["provider_payment_id"]))
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert r.json()["applied"] is False
    assert (await confirm(client, fan, topup["id"])).status_code == 409
    assert await cash(client, fan) == 0
    await assert_ledger_ok(container)


async def test_unsigned_forged_and_stale_webhooks_are_refused(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    topup = await open_topup(client, fan, 5_000)
    pid = topup["provider_payment_id"]
    payer.pay(pid)
    body, headers = payer.webhook("paid", pid, secret=payer.wrong_secret)
    assert (await deliver(client, payer, (body, headers))).status_code == 401
    body, headers = payer.webhook("paid", pid)
    tampered = body.replace(b'"', b' "', 1)
    assert (await deliver(client, payer, (tampered, headers))).status_code == 401
    assert (await deliver(client, payer, (body, {}))).status_code == 401
    stale = payer.webhook("paid", pid, timestamp=int(time.time()) - 600)
    r = await deliver(client, payer, stale)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    other = "portone" if payer.name == "stripe" else "stripe"
    assert (await client.post(f"{API}/payments/webhook/{other}", content=body,
                              headers=headers)).status_code == 404
    row = (await client.get(f"{API}/wallet/topups/{topup['id']}", headers=fan.headers)).json()
    assert row["status"] == "pending"
    assert await cash(client, fan) == 0
    await assert_ledger_ok(container)


async def test_failed_and_cancelled_payments_end_without_money(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    failed = await open_topup(client, fan, 7_000)
    payer.fail(failed["provider_payment_id"])
    r = await deliver(client, payer, payer.webhook("failed", failed["provider_payment_id"]))
    assert r.json() == {"id": failed["id"], "status": "failed", "applied": True}
    cancelled = await open_topup(client, fan, 8_000)
    payer.cancel(cancelled["provider_payment_id"])
    r = await confirm(client, fan, cancelled["id"])
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["failure_reason"]
    rows = {t["id"]: t for t in
            (await client.get(f"{API}/wallet/topups", headers=fan.headers)).json()["items"]}
    assert rows[failed["id"]]["status"] == "failed" and rows[failed["id"]]["failure_reason"]
    assert rows[cancelled["id"]]["status"] == "cancelled"
    assert await cash(client, fan) == 0
    # A cancelled payment stays cancelled whatever arrives later.
    r = await deliver(client, payer, payer.webhook("paid", cancelled["provider_payment_id"]))
    assert r.json()["status"] == "cancelled" and r.json()["applied"] is False
    if payer.name == "stripe":
        # Stripe lets the payer retry the same PaymentIntent after a decline.
        payer.pay(failed["provider_payment_id"])
        r = await deliver(client, payer, payer.webhook("paid", failed["provider_payment_id"]))
        assert r.json() == {"id": failed["id"], "status": "completed", "applied": True}
        assert await cash(client, fan) == 7_000
    await assert_ledger_ok(container)


async def test_a_virtual_account_deposit_arrives_later(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    if payer.name != "portone":
        pytest.skip("virtual accounts are PortOne's")
    fan = await make_user(container)
    topup = await open_topup(client, fan, 50_000)
    pid = topup["provider_payment_id"]
    payer.fakes.portone_virtual_account(pid)
    r = await deliver(client, payer, payer.webhook("virtual_account", pid))
    assert r.json() == {"id": topup["id"], "status": "awaiting_deposit", "applied": True}
    row = (await client.get(f"{API}/wallet/topups/{topup['id']}", headers=fan.headers)).json()
    assert row["virtual_account"] == "SHINHAN 56211234567890 미션링크"
    assert row["deposit_due_at"] == "2026-01-03T15:00:00Z"
    assert await cash(client, fan) == 0
    # The payer is back from the widget before depositing: still waiting.
    assert (await confirm(client, fan, topup["id"])).json()["status"] == "awaiting_deposit"
    # Days later the bank deposit lands; only the webhook says so.
    payer.pay(pid)
    r = await deliver(client, payer, payer.webhook("paid", pid))
    assert r.json() == {"id": topup["id"], "status": "completed", "applied": True}
    assert await cash(client, fan) == 50_000
    await assert_ledger_ok(container)


async def test_daily_topup_limit_counts_the_kst_day(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    # Tokens are issued (and checked) at the real time; the clock then moves on.
    fan, other = await make_user(container), await make_user(container)
    clock: Any = container.clock
    end = kst_day(clock.now())[1]
    # Begin at 23:00 KST, an hour before the Korean day ends.
    clock.advance((end - timedelta(hours=1) - clock.now()).total_seconds())
    first = await open_topup(client, fan, 600_000)
    payer.pay(first["provider_payment_id"])
    assert (await confirm(client, fan, first["id"])).json()["status"] == "completed"
    failed = await open_topup(client, fan, 300_000)
    payer.fail(failed["provider_payment_id"])
    assert (await confirm(client, fan, failed["id"])).json()["status"] == "failed"
    # 600,000 completed + (failed ones do not count) + 400,000 = the limit exactly.
    pending = await open_topup(client, fan, 400_000)
    r = await client.post(f"{API}/wallet/topups", json={"amount": 1_000},
                          headers=fan.headers)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"].endswith("/daily-topup-limit")
    wait = math.ceil((kst_day(clock.now())[1] - clock.now()).total_seconds())
    assert problem["retry_after"] == wait == 3600
    assert r.headers["Retry-After"] == "3600"
    assert "1000000 KRW" in problem["detail"]
    # Others are not limited by this user's day.
    await open_topup(client, other, 1_000_000)
    # A payment left open stops holding the limit after an hour... which is also midnight
    # KST here; a new Korean day starts from zero either way.
    clock.advance(3600)
    again = await open_topup(client, fan, 1_000_000)
    payer.pay(pending["provider_payment_id"])
    assert (await confirm(client, fan, pending["id"])).json()["status"] == "completed"
    payer.pay(again["provider_payment_id"])
    assert (await confirm(client, fan, again["id"])).json()["status"] == "completed"
    assert await cash(client, fan) == 2_000_000
    await assert_ledger_ok(container)


async def test_an_abandoned_payment_stops_holding_the_limit_after_an_hour(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    clock: Any = container.clock
    start, _ = kst_day(clock.now())
    # 10:00 KST, far from the day's end.
    clock.advance((start + timedelta(hours=10) - clock.now()).total_seconds() % 86_400)
    await open_topup(client, fan, 1_000_000)
    r = await client.post(f"{API}/wallet/topups", json={"amount": 1_000}, headers=fan.headers)
    assert r.status_code == 409
    clock.advance(3601)
    await open_topup(client, fan, 1_000_000)
    await assert_ledger_ok(container)


async def test_reconcile_finds_top_ups_credited_wrongly(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    paid = await open_topup(client, fan, 4_000)
    payer.pay(paid["provider_payment_id"])
    await confirm(client, fan, paid["id"])
    unpaid = await open_topup(client, fan, 3_000)
    await assert_ledger_ok(container)
    now = container.clock.now()
    async with container.core_db.begin() as conn:
        # A completed top-up without its credit, and a credit for a pending one.
        await conn.execute(update(topups).where(topups.c.id == unpaid["id"])
                           .values(status="completed"))
        await conn.execute(update(topups).where(topups.c.id == paid["id"])
                           .values(status="failed"))
        await conn.execute(insert(transfers).values(
            id="topup:999999", kind="topup", currency="KRW", from_account="provider:x",
            to_account="user:999999:cash", amount=5, created_at=now))
    async with container.core_db.read() as conn:
        report = await check(conn)
    text = report.render()
    assert f"top-up {unpaid['id']} completed without its journal transfer" in text
    assert f"top-up {paid['id']} is failed but was credited" in text
    assert "transfer topup:999999 has no top-up" in text


async def test_a_provider_outage_is_a_502_and_changes_nothing(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    topup = await open_topup(client, fan, 6_000)
    payer.pay(topup["provider_payment_id"])
    payer.fakes.down = True
    try:
        r = await client.post(f"{API}/wallet/topups", json={"amount": 6_000},
                              headers=fan.headers)
        assert r.status_code == 502, r.text
        assert r.json()["type"].endswith("/payment-provider-unavailable")
        assert F.PORTONE_SECRET not in r.text and F.STRIPE_SECRET not in r.text
        assert (await confirm(client, fan, topup["id"])).status_code == 502
        signed = payer.webhook("paid", topup["provider_payment_id"])
        assert (await deliver(client, payer, signed)).status_code == 502
    finally:
        payer.fakes.down = False
    items = (await client.get(f"{API}/wallet/topups", headers=fan.headers)).json()["items"]
    assert [(t["id"], t["status"]) for t in items] == [(topup["id"], "pending")]
    # The provider retries its webhook once it is back.
    r = await deliver(client, payer, payer.webhook("paid", topup["provider_payment_id"]))
    assert r.json()["status"] == "completed"
    assert await cash(client, fan) == 6_000
    await assert_ledger_ok(container)


async def test_the_wallet_page_loads_only_the_configured_providers_widget(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    sdk = {"portone": "https://cdn.portone.io/v2/browser-sdk.js",
           "stripe": "https://js.stripe.com/v3/"}
    r = await client.get("/wallet")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    mine, other = sdk[payer.name], sdk["stripe" if payer.name == "portone" else "portone"]
    assert f'<script src="{mine}" defer></script>' in r.text and other not in r.text
    assert "/static/payments.js?v=" in r.text
    origin = mine.split("/v")[0]
    assert f"script-src 'self' {origin}" in csp and "frame-ancestors 'none'" in csp
    assert ("name=\"pay_method\"" in r.text) == (payer.name == "portone")
    assert "1,000,000" in r.text  # the daily limit, told before paying
    # Every other page keeps the strict policy.
    assert (await client.get("/login")).headers["content-security-policy"] == pages.CSP
    # The sandbox (the default) loads no provider script at all.
    sandboxed = dataclasses.replace(container, payments=SandboxProvider())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(sandboxed)),
                                 base_url="http://testserver") as plain:
        r = await plain.get("/wallet")
    assert r.headers["content-security-policy"] == pages.CSP
    assert "payments.js" not in r.text and "<script src=\"https" not in r.text


async def test_a_partly_cancelled_payment_is_not_the_amount_asked_for(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    if payer.name != "portone":
        pytest.skip("partial cancellation before confirmation is PortOne's")
    fan = await make_user(container)
    topup = await open_topup(client, fan, 10_000)
    payer.fakes.portone_partial_cancel(topup["provider_payment_id"], 3_000)
    r = await deliver(client, payer, payer.webhook("cancelled", topup["provider_payment_id"]))
    assert r.json() == {"id": topup["id"], "status": "rejected", "applied": True}
    row = (await client.get(f"{API}/wallet/topups/{topup['id']}", headers=fan.headers)).json()
    assert (row["reported_amount"], row["reported_currency"]) == (7_000, "KRW")
    assert await cash(client, fan) == 0
    await assert_ledger_ok(container)


async def test_browser_and_webhooks_racing_credit_once(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    topup = await open_topup(client, fan, 9_000)
    payer.pay(topup["provider_payment_id"])
    results = await asyncio.gather(
        *(confirm(client, fan, topup["id"]) for _ in range(4)),
        *(deliver(client, payer, payer.webhook("paid", topup["provider_payment_id"]))
          for _ in range(4)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert [r.json()["status"] for r in results] == ["completed"] * 8
    assert sum(r.json()["applied"] for r in results) == 1
    assert await cash(client, fan) == 9_000
    await assert_ledger_ok(container)


async def test_top_ups_opened_at_once_share_one_daily_limit(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    clock: Any = container.clock
    start, _ = kst_day(clock.now())
    clock.advance((start + timedelta(hours=10) - clock.now()).total_seconds() % 86_400)
    results = await asyncio.gather(*(
        client.post(f"{API}/wallet/topups", json={"amount": 400_000}, headers=fan.headers)
        for _ in range(4)))
    assert sorted(r.status_code for r in results) == [201, 201, 409, 409]
    await assert_ledger_ok(container)


async def test_verified_events_about_other_things_are_acknowledged_and_ignored(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    if payer.name == "portone":
        body, headers = F.portone_webhook("Transaction.Paid", "x")
        # A billing-key event, signed the same way.
        body = (b'{"type": "BillingKey.Issued", "timestamp": "2026-01-01T00:00:00Z", '
                b'"data": {"storeId": "s", "billingKey": "bk"}}')
        body, headers = _resign_portone(body)
    else:
        body, headers = F.stripe_webhook("charge.succeeded", {"id": "ch_1", "object": "charge"})
    r = await deliver(client, payer, (body, headers))
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": False, "ignored": True}
    # A verified event about a payment that is not one of ours.
    if payer.name == "portone":
        signed = F.portone_webhook("Transaction.Paid", "ml_not_ours")
        payer.fakes.portone["ml_not_ours"] = {"status": "PAID", "amount": 1000, "paid": 1000,
                                              "store_id": F.PORTONE_STORE}
    else:
        signed = F.stripe_webhook("payment_intent.succeeded",
                                  {"id": "pi_not_ours", "object": "payment_intent"})
        payer.fakes.stripe["pi_not_ours"] = {
            "id": "pi_not_ours", "object": "payment_intent", "amount": 1000,
            "amount_received": 1000, "currency": "krw", "status": "succeeded"}
    r = await deliver(client, payer, signed)
    assert r.status_code == 404, r.text
    await assert_ledger_ok(container)


def _resign_portone(body: bytes) -> tuple[bytes, dict[str, str]]:
    import base64
    import hashlib
    import hmac
    import uuid

    msg_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(F.PORTONE_WEBHOOK_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return body, {"webhook-id": msg_id, "webhook-timestamp": stamp,
                  "webhook-signature": "v1," + base64.b64encode(mac).decode(),
                  "content-type": "application/json"}


async def test_a_portone_event_this_sdk_does_not_know_still_triggers_a_lookup(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    if payer.name != "portone":
        pytest.skip("PortOne's SDK answers unknown event types as plain data")
    fan = await make_user(container)
    topup = await open_topup(client, fan, 2_000)
    payer.pay(topup["provider_payment_id"])
    body, headers = F.portone_webhook("Transaction.SomethingNew", topup["provider_payment_id"])
    r = await deliver(client, payer, (body, headers))
    assert r.json() == {"id": topup["id"], "status": "completed", "applied": True}
    await assert_ledger_ok(container)


async def test_payments_sync_applies_what_the_provider_says_when_nobody_reported_it(
    client: httpx.AsyncClient, container: Container, payer: Provider,
) -> None:
    fan = await make_user(container)
    clock: Any = container.clock
    paid = await open_topup(client, fan, 3_000)
    failed = await open_topup(client, fan, 4_000)
    payer.pay(paid["provider_payment_id"])
    payer.fail(failed["provider_payment_id"])
    clock.advance(700)
    recent = await open_topup(client, fan, 5_000)
    payer.pay(recent["provider_payment_id"])
    # Neither the browser nor a webhook said anything; the sweep asks the provider.
    counts = await wallet.sync_topups(container.core_db, container.payments,
                                      now=clock.now(), older_than=timedelta(minutes=10),
                                      limit=100)
    assert counts == {"completed": 1, "failed": 1}
    assert await cash(client, fan) == 3_000
    rows = {t["id"]: t["status"] for t in
            (await client.get(f"{API}/wallet/topups", headers=fan.headers)).json()["items"]}
    assert rows == {paid["id"]: "completed", failed["id"]: "failed", recent["id"]: "pending"}
    await assert_ledger_ok(container)


async def test_the_payments_sync_command(
    client: httpx.AsyncClient, container: Container, payer: Provider,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    fan = await make_user(container)
    topup = await open_topup(client, fan, 3_000)
    payer.pay(topup["provider_payment_id"])
    s = container.settings
    for name in ("data_dir", "database_url", "identity_database_url", "payment_provider",
                 "portone_api_base_url", "portone_api_secret", "portone_webhook_secret",
                 "portone_store_id", "portone_channel_key", "stripe_api_base_url",
                 "stripe_secret_key", "stripe_publishable_key", "stripe_webhook_secret"):
        monkeypatch.setenv(f"MISSIONLINK_{name.upper()}", str(getattr(s, name)))
    argv = ["payments", "sync", "--older-than", "0"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    assert "top-ups looked up: completed 1" in capsys.readouterr().out
    assert await cash(client, fan) == 3_000
    assert await asyncio.to_thread(cli.main, argv) == 0
    assert "none open" in capsys.readouterr().out
    await assert_ledger_ok(container)
