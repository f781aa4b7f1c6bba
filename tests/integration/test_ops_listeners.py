"""The internal listeners as real processes: ``missionlink worker`` answers /metrics,
/healthz and /readyz on METRICS_PORT; each ``missionlink serve --workers N`` process
serves its own /metrics on a port of API_METRICS_PORT .. API_METRICS_PORT + N - 1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from missionlink.bootstrap import Container
from missionlink.workers.health import HealthServer, Heartbeat
from tests.conftest import redis_test_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_run(length: int) -> int:
    """The first of ``length`` consecutive ports that are all free now."""
    for _ in range(50):
        first = _free_port()
        if first + length > 65535:
            continue
        socks = []
        try:
            for port in range(first, first + length):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


def _env(container: Container, **extra: str) -> dict[str, str]:
    s = container.settings
    return {
        **os.environ,
        "MISSIONLINK_DATA_DIR": str(s.data_dir),
        "MISSIONLINK_DATABASE_URL": s.database_url,
        "MISSIONLINK_IDENTITY_DATABASE_URL": s.identity_database_url,
        **extra,
    }


@contextmanager
def _process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    out = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "missionlink.cli", *argv], env=env,
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        out.close()


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, status: int = 200,
              timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == status:
                return r
            last = r.status_code
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered {status} (last: {last})\n{log.read_text()}")


def test_the_worker_answers_metrics_liveness_and_readiness(
    container: Container, tmp_path: Path,
) -> None:
    port = _free_port()
    log = tmp_path / "worker.log"
    env = _env(container, MISSIONLINK_METRICS_PORT=str(port))
    with _process(["worker"], env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        health = _wait_for(f"{base}/healthz", proc, log).json()
        assert health["status"] == "ok"
        assert 0 <= health["last_pass_seconds_ago"] <= 60
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"ready": True, "checks": {
            "identity_db": "ok", "core_db": "ok", "broker": "ok"}}
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        # What the worker samples and the reconcile it runs on its first pass.
        assert "missionlink_outbox_backlog " in metrics.text
        assert "missionlink_reconcile_ok 1.0" in metrics.text
        assert httpx.get(f"{base}/nope", timeout=5).status_code == 404
        assert httpx.post(f"{base}/healthz", timeout=5).status_code == 405
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, log.read_text()


def test_a_worker_whose_database_is_gone_is_neither_live_nor_ready(
    container: Container, tmp_path: Path,
) -> None:
    port = _free_port()
    log = tmp_path / "worker.log"
    closed = _free_port()  # nothing listens there
    env = _env(container, MISSIONLINK_METRICS_PORT=str(port),
               MISSIONLINK_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed}/nowhere")
    with _process(["worker"], env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        # No pass ever completes: /healthz says so (the startup probe restarts it in time).
        health = _wait_for(f"{base}/healthz", proc, log, status=503).json()
        assert health == {"status": "starting", "last_pass_seconds_ago": None}
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["core_db"].startswith("error")
        assert checks["identity_db"] == "ok" and checks["broker"] == "ok"
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 200


async def test_liveness_turns_503_once_no_pass_completed_for_too_long() -> None:
    now = [100.0]
    beat = Heartbeat(clock=lambda: now[0])

    async def ready() -> dict[str, str]:
        return {"core_db": "ok"}

    server = HealthServer(beat, ready, liveness_seconds=60)
    status, _, _ = await server.answer("GET", "/healthz", "")
    assert status.startswith("503")
    beat.beat()
    now[0] += 59
    status, _, body = await server.answer("GET", "/healthz", "")
    assert status.startswith("200"), body
    now[0] += 2
    status, _, body = await server.answer("GET", "/healthz", "")
    assert status.startswith("503") and b"stalled" in body
    status, content_type, _ = await server.answer(
        "GET", "/metrics", "application/openmetrics-text; version=1.0.0")
    assert status.startswith("200") and content_type.startswith("application/openmetrics-text")


@pytest.mark.parametrize(
    "database_urls", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_each_serve_process_serves_its_own_metrics_port(
    container: Container, tmp_path: Path,
) -> None:
    api_port = _free_port()
    first = _free_run(3)
    log = tmp_path / "serve.log"
    env = _env(container, MISSIONLINK_BROKER_URL=redis_test_url("serve --workers 2"),
               MISSIONLINK_API_METRICS_PORT=str(first), MISSIONLINK_SERVE_WORKER="0")
    with _process(["serve", "--workers", "2", "--port", str(api_port)], env, log) as proc:
        _wait_for(f"http://127.0.0.1:{api_port}/readyz", proc, log)
        bodies = [_wait_for(f"http://127.0.0.1:{p}/metrics", proc, log).text
                  for p in (first, first + 1)]
        for body in bodies:
            assert "missionlink_db_pool_connections" in body  # live gauges work per process
        # Two processes, two ports: nothing past API_METRICS_PORT + workers - 1.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{first + 2}/metrics", timeout=2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_one_serve_process_listens_on_api_metrics_port_unless_it_is_zero(
    container: Container, tmp_path: Path, on: bool,
) -> None:
    api_port, first = _free_port(), _free_port()
    log = tmp_path / "serve.log"
    env = _env(container, MISSIONLINK_API_METRICS_PORT=str(first) if on else "0",
               MISSIONLINK_SERVE_WORKER="0")
    with _process(["serve", "--port", str(api_port)], env, log) as proc:
        _wait_for(f"http://127.0.0.1:{api_port}/healthz", proc, log)
        # The public route stays either way (nginx and the Ingress keep it from the internet).
        assert httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=5).status_code == 200
        if on:
            r = httpx.get(f"http://127.0.0.1:{first}/metrics", timeout=5)
            assert r.status_code == 200
            assert "missionlink_http_request_seconds" in r.text
        else:
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{first}/metrics", timeout=2)
            assert "metrics.listening" not in log.read_text()
