"""The image check's mission flow (deploy/docker/smoke.py) passes against ``missionlink
serve`` on the embedded default, so a change to the contract breaks this test rather than
only the container check at the end of CI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import stop_process

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_image_smoke_flow_passes_on_the_embedded_default(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
    env["MISSIONLINK_DATA_DIR"] = str(tmp_path / "data")
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "missionlink.cli", "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded machine starts slowly
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "serve did not start in 90 s"
            time.sleep(0.2)
        smoke = subprocess.run(
            [sys.executable, str(ROOT / "deploy/docker/smoke.py"), base,
             "--settle-timeout", "60"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert "MISSION_ID=" in smoke.stdout
    finally:
        stop_process(proc)
        log.close()
