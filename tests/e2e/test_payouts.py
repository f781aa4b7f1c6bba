"""Streamer payouts end to end (docs/payments.md, "Payouts"): a sealed payout account,
earnings held for PAYOUT_HOLD_DAYS, a withdrawal with tax withheld, the admin's bank
transfer batch, paid and failed lines, the yearly statement, and reconcile clean."""

from __future__ import annotations

import base64
import csv
import io
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from missionlink.adapters.db.core_tables import topups
from missionlink.adapters.db.payout_tables import payout_accounts
from missionlink.adapters.payments.providers import ProviderDispute
from missionlink.bootstrap import Container
from missionlink.domain import ledger as L
from missionlink.domain.clock import FrozenClock
from missionlink.services.chargebacks import apply_dispute
from missionlink.services.wallet import KST
from tests.helpers import Actor, assert_ledger_ok, make_user, propose, settle_all, top_up, wallet

KEY = base64.b64encode(b"k" * 32).decode()
#: Payouts on: one sealing key (the payout browser tests use it too).
PAYOUT_SETTINGS: dict[str, object] = {"payout_account_keys": f"test1:{KEY}"}
DAY = 86_400


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return dict(PAYOUT_SETTINGS)


async def _earn(client: httpx.AsyncClient, container: Container, streamer: Actor,
                amount: int) -> None:
    """A fan's mission of ``amount`` to ``streamer`` succeeds and is paid out (10% fee)."""
    fan = await make_user(container)
    await top_up(client, fan, amount)
    m = await propose(client, fan, streamer, amount=amount)
    r = await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/missions/{m['id']}/result", json={"outcome": "success"},
                          headers=streamer.headers)
    assert r.status_code == 200, r.text
    await settle_all(container)


async def _withdraw(client: httpx.AsyncClient, streamer: Actor, amount: int, key: str
                    ) -> httpx.Response:
    return await client.post("/api/v1/me/withdrawals", json={"amount": amount},
                             headers={**streamer.headers, "Idempotency-Key": key})


async def _summary(client: httpx.AsyncClient, streamer: Actor) -> dict[str, Any]:
    r = await client.get("/api/v1/me/payouts", headers=streamer.headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


ACCOUNT = {"bank_code": "088", "account_number": "110123456789", "holder": "김스트리머"}


async def test_a_streamer_withdraws_earnings_after_the_hold_with_tax_withheld(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    await _earn(client, container, streamer, 100_000)
    assert await _summary(client, streamer) | {"account": None} == {
        "pending": 90_000, "withdrawable": 0, "requested": 0, "paid": 0,
        "cash_balance": 90_000, "hold_days": 7, "minimum": 10_000, "account": None}

    r = await _withdraw(client, streamer, 10_000, "w-0")
    assert r.status_code == 409 and r.json()["type"].endswith("/payout-account-missing")
    r = await client.put("/api/v1/me/payout-account", json=ACCOUNT, headers=streamer.headers)
    assert r.status_code == 200, r.text
    assert r.json()["account_number_masked"] == "***-****-6789"
    async with container.core_db.read() as conn:
        sealed = (await conn.execute(select(payout_accounts))).one()
    assert sealed.key_id == "test1" and "110123456789" not in sealed.sealed
    assert "김스트리머" not in sealed.sealed

    r = await _withdraw(client, streamer, 10_000, "w-1")
    assert r.status_code == 409 and r.json()["type"].endswith("/not-withdrawable")
    clock.advance(7 * DAY)
    r = await _withdraw(client, streamer, 9_990, "w-2")
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "below-minimum"
    r = await client.post("/api/v1/me/withdrawals", json={"amount": 10_000},
                          headers=streamer.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "Idempotency-Key"
    r = await _withdraw(client, streamer, 90_001, "w-3")
    assert r.status_code == 409 and r.json()["type"].endswith("/not-withdrawable")

    r = await _withdraw(client, streamer, 50_000, "w-4")
    assert r.status_code == 201, r.text
    first = r.json()
    assert {k: first[k] for k in ("gross", "income_tax", "local_tax", "withholding", "net",
                                  "state", "account_number_masked")} == {
        "gross": 50_000, "income_tax": 1_500, "local_tax": 150, "withholding": 1_650,
        "net": 48_350, "state": "requested", "account_number_masked": "***-****-6789"}
    again = await _withdraw(client, streamer, 50_000, "w-4")
    assert again.json() == first and again.headers["Idempotent-Replayed"] == "true"
    assert (await wallet(client, streamer))["cash_balance"] == 40_000
    got = await _summary(client, streamer)
    assert (got["withdrawable"], got["requested"], got["paid"]) == (40_000, 50_000, 0)

    r = await client.get("/api/v1/wallet/transactions", headers=streamer.headers)
    lines = {(line["kind"], line["amount"], line["counterparty"]) for line in r.json()["items"]}
    assert {("withdrawal", -48_350, "withdrawal:clearing"),
            ("withholding", -1_650, "tax:withholding")} <= lines
    await assert_ledger_ok(container)


async def test_a_wallet_in_debt_withdraws_nothing_until_repaid(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    other = await make_user(container, "streamer")
    await top_up(client, streamer, 10_000)
    await propose(client, streamer, other, amount=10_000)
    async with container.core_db.begin() as conn:
        pid = await conn.scalar(select(topups.c.provider_payment_id)
                                .where(topups.c.user_id == streamer.id))
        dispute = ProviderDispute("dp_payout", str(pid), 10_000, L.KRW, "opened")
        await apply_dispute(conn, provider="sandbox", dispute=dispute, now=clock.now())
    await _earn(client, container, streamer, 100_000)
    r = await client.put("/api/v1/me/payout-account", json=ACCOUNT, headers=streamer.headers)
    assert r.status_code == 200, r.text
    clock.advance(7 * DAY)
    got = await _summary(client, streamer)
    assert (got["withdrawable"], got["cash_balance"]) == (0, 90_000)
    r = await _withdraw(client, streamer, 10_000, "w-debt")
    assert r.status_code == 409 and "10000 KRW in debt" in r.json()["detail"], r.text
    r = await client.post("/api/v1/wallet/debt/repay", headers=streamer.headers)
    assert r.json() == {"repaid": 10_000, "cash_balance": 80_000, "debt": 0}, r.text
    assert (await _summary(client, streamer))["withdrawable"] == 80_000
    r = await _withdraw(client, streamer, 80_000, "w-debt")
    assert r.status_code == 201, r.text
    await assert_ledger_ok(container)


async def test_admin_exports_a_batch_and_marks_lines_paid_or_failed_once(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    streamer = await make_user(container, "streamer")
    admin = await make_user(container, "admin")
    earned_in = clock.now().astimezone(KST).year
    await _earn(client, container, streamer, 100_000)
    await client.put("/api/v1/me/payout-account", json=ACCOUNT, headers=streamer.headers)
    clock.advance(8 * DAY)
    paid = (await _withdraw(client, streamer, 50_000, "a")).json()
    failed = (await _withdraw(client, streamer, 20_000, "b")).json()

    r = await client.post("/api/v1/admin/payout-batches", headers=streamer.headers)
    assert r.status_code == 403
    r = await client.post("/api/v1/admin/payout-batches", headers=admin.headers)
    assert r.status_code == 201, r.text
    batch = r.json()
    assert (batch["lines"], batch["total_net"]) == (2, 48_350 + 19_340)
    r = await client.get(f"/api/v1/admin/payout-batches/{batch['id']}/transfers.csv",
                         headers=admin.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0] == {"bank_code": "088", "account_number": "110123456789",
                       "holder": "김스트리머", "amount": "48350",
                       "reference": f"MLW{paid['id']:010d}"}
    r = await client.post("/api/v1/admin/payout-batches", headers=admin.headers)
    assert r.status_code == 409 and r.json()["type"].endswith("/withdrawal-state")
    r = await client.get("/api/v1/admin/withdrawals?state=exported", headers=admin.headers)
    assert [(w["id"], w["user_id"], w["display_name"], w["batch_id"])
            for w in r.json()["items"]] == [(failed["id"], streamer.id, streamer.name, batch["id"]),
                                            (paid["id"], streamer.id, streamer.name, batch["id"])]

    for _ in range(2):
        r = await client.post(f"/api/v1/admin/withdrawals/{paid['id']}/paid",
                              headers=admin.headers)
        assert r.status_code == 200 and r.json()["state"] == "paid"
    assert r.json()["applied"] is False
    reason = {"reason": "계좌번호 오류 (account closed)"}
    for applied in (True, False):
        r = await client.post(f"/api/v1/admin/withdrawals/{failed['id']}/failed",
                              json=reason, headers=admin.headers)
        assert r.status_code == 200, r.text
        assert (r.json()["state"], r.json()["applied"]) == ("failed", applied)
    r = await client.post(f"/api/v1/admin/withdrawals/{failed['id']}/paid",
                          headers=admin.headers)
    assert r.status_code == 409 and r.json()["type"].endswith("/withdrawal-state")
    r = await client.post(f"/api/v1/admin/withdrawals/{paid['id']}/failed", json=reason,
                          headers=admin.headers)
    assert r.status_code == 409

    mine = (await client.get("/api/v1/me/withdrawals", headers=streamer.headers)).json()
    assert [(w["state"], w["failure_reason"]) for w in mine["items"]] == [
        ("failed", reason["reason"]), ("paid", None)]
    assert (await wallet(client, streamer))["cash_balance"] == 40_000  # 20,000 came back
    got = await _summary(client, streamer)
    assert (got["withdrawable"], got["requested"], got["paid"]) == (40_000, 0, 50_000)
    r = await client.get("/api/v1/wallet/transactions", headers=streamer.headers)
    kinds = [line["kind"] for line in r.json()["items"]]
    assert {"withdrawal_failed", "withholding_back"} <= set(kinds)
    await assert_ledger_ok(container)

    year = clock.now().astimezone(KST).year
    if year == earned_in:  # the earnings and the withdrawals fall in one KST year
        r = await client.get(f"/api/v1/me/statements/{year}?format=json",
                             headers=streamer.headers)
        total = r.json()["total"]
        assert total == {"gross": 100_000, "fee": 10_000, "earnings": 90_000,
                         "withdrawn": 50_000, "withholding": 1_650, "net": 48_350}
    r = await client.get(f"/api/v1/me/statements/{year}", headers=streamer.headers)
    assert r.status_code == 200 and r.text.startswith(
        "month,gross,fee,earnings,withdrawn,withholding,net\r\n")
    assert len(r.text.strip().splitlines()) == 14  # header, twelve months, total


async def test_payout_routes_answer_503_without_keys(
    client: httpx.AsyncClient, container: Container
) -> None:
    container.vault = None
    streamer = await make_user(container, "streamer")
    viewer = await make_user(container)
    r = await client.get("/api/v1/me/payouts", headers=streamer.headers)
    assert r.status_code == 503 and r.json()["type"].endswith("/payouts-unavailable")
    r = await client.put("/api/v1/me/payout-account", json=ACCOUNT, headers=streamer.headers)
    assert r.status_code == 503
    r = await client.get("/api/v1/me/payouts", headers=viewer.headers)
    assert r.status_code == 403


@pytest.mark.parametrize("settings_overrides", [
    {**PAYOUT_SETTINGS, "payout_account_cooldown_hours": 72}],
    ids=["cooldown-72h"])
async def test_a_new_or_changed_payout_account_cools_down_before_withdrawals(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """Someone who took over a streamer's login cannot send the earnings to their own
    account at once: withdrawals wait PAYOUT_ACCOUNT_COOLDOWN_HOURS after the account is
    registered or changed, and the refusal says how long (``retry_after``)."""
    streamer = await make_user(container, "streamer")
    await _earn(client, container, streamer, 100_000)
    r = await client.put("/api/v1/me/payout-account", json=ACCOUNT, headers=streamer.headers)
    assert r.status_code == 200, r.text
    clock.advance(7 * DAY)  # past the earnings' hold, and past the account's cool-down
    r = await _withdraw(client, streamer, 10_000, "before-change")
    assert r.status_code == 201, r.text

    changed = {**ACCOUNT, "account_number": "220987654321"}
    r = await client.put("/api/v1/me/payout-account", json=changed, headers=streamer.headers)
    assert r.status_code == 200, r.text
    clock.advance(3_600)
    r = await _withdraw(client, streamer, 10_000, "after-change")
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"].endswith("/payout-account-cooling-down")
    assert problem["retry_after"] == 71 * 3_600
    assert r.headers["Retry-After"] == str(71 * 3_600)
    assert (await wallet(client, streamer))["cash_balance"] == 80_000  # nothing moved

    clock.advance(71 * 3_600 - 1)
    r = await _withdraw(client, streamer, 10_000, "after-change")
    assert r.status_code == 409 and r.json()["retry_after"] == 1
    clock.advance(1)
    r = await _withdraw(client, streamer, 10_000, "after-change")
    assert r.status_code == 201, r.text
    assert r.json()["account_number_masked"] == "***-****-4321"
    await assert_ledger_ok(container)
