"""The metrics a mission flow leaves behind: business counters from committed events,
sampled gauges, the scheduled reconcile (and its flip on a broken ledger), rate-limit
refusals, pool gauges, and labels that stay low-cardinality whatever clients send."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY
from sqlalchemy import update

from missionlink.adapters.db.core_tables import wallets
from missionlink.bootstrap import Container
from missionlink.domain.clock import FrozenClock
from missionlink.workers import observe
from missionlink.workers.runner import Worker
from tests.conftest import BACKENDS
from tests.helpers import make_user, propose, top_up

ROOT = Path(__file__).resolve().parents[2]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_settled_mission_moves_the_business_counters_once(
        client: httpx.AsyncClient, container: Container) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 50_000)
    before = {name: value(name) for name in (
        "missionlink_pledges_total", "missionlink_pledged_krw_total",
        "missionlink_paid_out_krw_total", "missionlink_fees_krw_total",
        "missionlink_bets_total", "missionlink_bet_points_total",
        "missionlink_missions_created_total")}
    payouts = value("missionlink_settlements_total", outcome="payout")
    settled = value("missionlink_settlement_lag_seconds_count")
    m = await propose(client, fan, streamer, amount=10_000, duration=3600)
    r = await client.post(f"/api/v1/missions/{m['id']}/accept", headers=streamer.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 5000},
                          headers={**fan.headers, "Idempotency-Key": "p1"})
    assert r.status_code == 201, r.text
    # A replay applies nothing and counts nothing.
    r = await client.post(f"/api/v1/missions/{m['id']}/pledges", json={"amount": 5000},
                          headers={**fan.headers, "Idempotency-Key": "p1"})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/missions/{m['id']}/bets",
                          json={"side": "success", "points": 100}, headers=fan.headers)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/missions/{m['id']}/result", json={"outcome": "success"},
                          headers=streamer.headers)
    assert r.status_code == 200, r.text
    worker = Worker(container)
    await worker.run_until_idle()
    await worker.run_until_idle()  # nothing left: nothing counted twice

    delta = {name: value(name) - v for name, v in before.items()}
    fee = 15_000 * container.settings.platform_fee_bps // 10_000
    assert delta == {
        "missionlink_pledges_total": 2, "missionlink_pledged_krw_total": 15_000,
        "missionlink_paid_out_krw_total": 15_000 - fee, "missionlink_fees_krw_total": fee,
        "missionlink_bets_total": 1, "missionlink_bet_points_total": 100,
        "missionlink_missions_created_total": 1,
    }
    assert value("missionlink_settlements_total", outcome="payout") - payouts == 1
    assert value("missionlink_settlement_lag_seconds_count") - settled == 1
    # The worker's first pass sampled the gauges and ran the reconcile.
    assert value("missionlink_reconcile_ok") == 1
    assert value("missionlink_reconcile_violations") == 0
    assert value("missionlink_reconcile_last_run_timestamp_seconds") > 0
    async with container.core_db.read() as conn:
        await observe.sample(conn, container.clock.now())
    assert value("missionlink_missions", status="succeeded") == 1
    assert value("missionlink_escrow_krw") == 0
    assert value("missionlink_outbox_backlog") == 0
    assert value("missionlink_dead_letters", kind="event") == 0


async def test_escrow_and_backlog_are_sampled_before_settlement(
        client: httpx.AsyncClient, container: Container) -> None:
    streamer = await make_user(container, "streamer")
    fan = await make_user(container)
    await top_up(client, fan, 50_000)
    await propose(client, fan, streamer, amount=7_000, duration=3600)
    async with container.core_db.read() as conn:
        await observe.sample(conn, container.clock.now())
    assert value("missionlink_escrow_krw") == 7_000
    assert value("missionlink_missions", status="pending") == 1
    assert value("missionlink_outbox_backlog") >= 2  # mission.created, pledge.created


async def test_a_broken_ledger_flips_the_reconcile_metrics(
        client: httpx.AsyncClient, container: Container, clock: FrozenClock) -> None:
    fan = await make_user(container)
    await top_up(client, fan, 5_000)
    await Worker(container).run_until_idle()
    assert value("missionlink_reconcile_ok") == 1
    async with container.core_db.begin() as conn:  # a balance no posting explains
        await conn.execute(update(wallets).where(wallets.c.user_id == fan.id)
                           .values(cash_balance=wallets.c.cash_balance + 1))
    async with container.core_db.read() as conn:
        from missionlink.services.reconcile import check_measured

        report = await check_measured(conn)
    assert not report.ok
    assert value("missionlink_reconcile_ok") == 0
    assert value("missionlink_reconcile_violations") >= 1


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_signups_per_minute": 1}])
async def test_rate_limit_refusals_are_counted_by_limit(
        client: httpx.AsyncClient, container: Container) -> None:
    before = value("missionlink_rate_limited_total", limit="signup")
    answers = []
    for n in range(2):
        r = await client.post("/api/v1/auth/signup", json={
            "email": f"limit{n}@example.com", "password": "correct horse battery",
            "display_name": f"Limit {n}", "role": "viewer"})
        answers.append(r.status_code)
    assert answers == [201, 429]
    assert value("missionlink_rate_limited_total", limit="signup") - before == 1


async def test_pool_gauges_report_this_process_pools(container: Container) -> None:
    async with container.core_db.read():
        assert value("missionlink_db_pool_connections", database="core", state="in_use") >= 1
    assert value("missionlink_db_pool_connections", database="core", state="capacity") >= 1


#: Every label the service uses; a new one must be added here on purpose.
ALLOWED_LABELS = {"method", "route", "status", "topic", "outcome", "phase", "cap", "kind",
                  "database", "state", "stream", "limit", "le"}
#: A value that looks like an id, an email address or a raw path with an id in it.
SUSPICIOUS = re.compile(r"^\d+$|@|/\d+(/|$)|^[0-9a-f]{16,}$")


async def test_labels_stay_low_cardinality_whatever_clients_send(
        client: httpx.AsyncClient, container: Container) -> None:
    fan = await make_user(container)
    for n in range(30):  # made-up paths, ids and methods must not become label values
        await client.get(f"/api/v1/missions/{900_000 + n}")
        await client.get(f"/nothing/here/{n}")
        await client.request("PATCH", f"/api/v1/posts/{n}", headers=fan.headers, json={})
    await client.get("/api/v1/missions/not-a-number")
    for family in REGISTRY.collect():
        if not family.name.startswith("missionlink_"):
            continue
        combos = set()
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, (family.name, sample.labels)
            for label, text in sample.labels.items():
                if label == "status" and re.fullmatch(r"[1-5]\d\d", text):
                    continue  # an HTTP status code
                assert not SUSPICIOUS.search(text), (family.name, label, text)
            combos.add(tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le")))
        assert len(combos) < 300, (family.name, len(combos))


@pytest.mark.parametrize("database_urls", [BACKENDS[1]], indirect=True)
async def test_reconcile_reads_under_its_own_statement_timeout(container: Container) -> None:
    from sqlalchemy import text

    from missionlink.services.reconcile import RECONCILE_STATEMENT_TIMEOUT, check_measured

    async with container.core_db.read() as conn:
        await check_measured(conn)
        assert await conn.scalar(text("SHOW statement_timeout")) == RECONCILE_STATEMENT_TIMEOUT


async def test_a_broken_ledger_fires_the_reconcile_alert_in_promtool(
        client: httpx.AsyncClient, container: Container, tmp_path: Path) -> None:
    """The gauges a broken ledger leaves, fed as they are to deploy/monitoring's rule."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed under CI=true (Debian: prometheus)")
        pytest.skip("needs promtool (Debian: apt-get install prometheus)")
    fan = await make_user(container)
    await top_up(client, fan, 5_000)
    async with container.core_db.begin() as conn:
        await conn.execute(update(wallets).where(wallets.c.user_id == fan.id)
                           .values(cash_balance=wallets.c.cash_balance + 1))
    async with container.core_db.read() as conn:
        from missionlink.services.reconcile import check_measured

        await check_measured(conn)
    ok = value("missionlink_reconcile_ok")
    last_run = value("missionlink_reconcile_last_run_timestamp_seconds")
    assert (ok, last_run > 0) == (0, True)

    rules = ROOT / "deploy" / "monitoring" / "prometheus" / "alerts.yml"
    rule = next(r for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "MissionLinkReconcileFailed")
    labels = {"job": "missionlink-worker", "instance": "worker-1:9100"}
    selector = '{job="missionlink-worker",instance="worker-1:9100"}'
    annotations = {k: v.replace("{{ $labels.instance }}", labels["instance"]).strip()
                   for k, v in rule["annotations"].items()}
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f"missionlink_reconcile_ok{selector}", "values": f"{ok:g}x10"},
                {"series": f"missionlink_reconcile_last_run_timestamp_seconds{selector}",
                 "values": f"{last_run:.0f}x10"},
            ],
            "alert_rule_test": [{
                "eval_time": "5m", "alertname": "MissionLinkReconcileFailed",
                "exp_alerts": [{"exp_labels": {**labels, **rule["labels"]},
                                "exp_annotations": annotations}],
            }],
        }],
    }))
    result = subprocess.run([promtool, "test", "rules", str(tmp_path / "test.yml")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
