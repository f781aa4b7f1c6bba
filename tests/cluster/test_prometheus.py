"""A real Prometheus (Debian's package) scrapes a running MissionLink, an API process on
its internal metrics port and a worker, with deploy/monitoring's alert rules loaded; after
a mission flow its HTTP API has the series the dashboards and alerts are built on."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.chaos.harness import TEST_ENV, Client, Cluster, History, free_port, sign_up
from tests.conftest import pg_admin_url, redis_test_url

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "monitoring" / "prometheus" / "alerts.yml"
#: Series each dashboard family and alert group stands on, with a label that must be there.
WANTED = [
    'missionlink_http_request_seconds_count{job="missionlink-api",route="/api/v1/missions/{mission_id}/pledges"}',
    'missionlink_pledges_total{job="missionlink-worker"}',
    'missionlink_pledged_krw_total{job="missionlink-worker"}',
    'missionlink_settlements_total{job="missionlink-worker",outcome="payout"}',
    'missionlink_paid_out_krw_total{job="missionlink-worker"}',
    'missionlink_outbox_backlog{job="missionlink-worker"}',
    'missionlink_outbox_oldest_age_seconds{job="missionlink-worker"}',
    'missionlink_settlement_lag_seconds_count{job="missionlink-worker"}',
    'missionlink_emails_total{job="missionlink-worker",outcome="sent"}',
    'missionlink_reconcile_ok{job="missionlink-worker"}',
    'missionlink_escrow_krw{job="missionlink-worker"}',
    'missionlink_db_pool_connections{job="missionlink-api",database="core",state="capacity"}',
    'up{job="missionlink-api"}',
    'up{job="missionlink-worker"}',
]


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is not installed under CI=true (Debian: prometheus)")
        pytest.skip("needs Prometheus (Debian: apt-get install prometheus)")
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed under CI=true")
        pytest.skip("needs nginx (Debian: apt-get install nginx-light)")
    return found


@pytest.fixture
def running(tmp_path: Path, prometheus_binary: str) -> Iterator[tuple[Any, str]]:
    cluster = Cluster(admin_url=pg_admin_url(), broker_url=redis_test_url("the Prometheus test"),
                      name=f"mlp_{uuid.uuid4().hex[:8]}", port=free_port(), apis=1, workers=1,
                      state_dir=tmp_path / "cluster",
                      extra_env={**TEST_ENV, "MISSIONLINK_RECONCILE_INTERVAL_SECONDS": "5"})
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        cluster.start()
        api, worker = cluster.processes["api-1"], cluster.processes["worker-1"]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "missionlink-api",
                 "static_configs": [{"targets": [f"127.0.0.1:{api.metrics_port}"]}]},
                {"job_name": "missionlink-worker",
                 "static_configs": [{"targets": [f"127.0.0.1:{worker.metrics_port}"]}]},
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        with (tmp_path / "prometheus.log").open("wb") as log:
            prometheus = subprocess.Popen(
                [prometheus_binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT)
        yield cluster, f"http://127.0.0.1:{port}"
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(20)
        cluster.stop()
        asyncio.run(cluster.drop_databases())


async def _query(http: httpx.AsyncClient, base: str, expr: str) -> list[Any]:
    r = await http.get(f"{base}/api/v1/query", params={"query": expr})
    r.raise_for_status()
    result: list[Any] = r.json()["data"]["result"]
    return result


async def test_prometheus_scrapes_the_series_dashboards_and_alerts_use(
        running: tuple[Any, str]) -> None:
    cluster, prometheus = running
    async with httpx.AsyncClient(base_url=cluster.url, timeout=15) as http:
        client = Client(http, History())
        streamer = await sign_up(client, "streamer", "p")
        fan = await sign_up(client, "viewer", "p")
        op = await client.post("topup", fan.id, "/api/v1/wallet/topups", fan.token,
                               {"amount": 50_000})
        assert op.outcome == "ok"
        op = await client.post("mission", fan.id, "/api/v1/missions", fan.token, {
            "streamer_id": streamer.id, "title": "scraped", "description": "",
            "amount": 1000, "duration_seconds": 3600})
        mission = op.body["id"]
        for path, who, body in [
                (f"/api/v1/missions/{mission}/accept", streamer, None),
                (f"/api/v1/missions/{mission}/pledges", fan, {"amount": 2000}),
                (f"/api/v1/missions/{mission}/result", streamer, {"outcome": "success"})]:
            op = await client.post("step", who.id, path, who.token, body)
            assert op.outcome == "ok", (path, op.status, op.body)

    missing = list(WANTED)
    async with httpx.AsyncClient(timeout=5) as http:
        deadline = time.monotonic() + 60
        while missing and time.monotonic() < deadline:
            still = []
            for expr in missing:
                try:
                    found = await _query(http, prometheus, expr)
                except httpx.HTTPError:
                    found = []
                if not found:
                    still.append(expr)
            missing = still
            if missing:
                await asyncio.sleep(1)
        assert missing == [], f"Prometheus has no series for: {missing}"
        assert float((await _query(http, prometheus, WANTED[-1]))[0]["value"][1]) == 1
        paid = await _query(http, prometheus, "sum(missionlink_paid_out_krw_total)")
        assert float(paid[0]["value"][1]) > 0
        rules = (await http.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
        loaded = {r["name"]: r["health"] for g in rules for r in g["rules"]}
        assert loaded and all(h in ("ok", "unknown") for h in loaded.values()), loaded
        assert "MissionLinkReconcileFailed" in loaded
