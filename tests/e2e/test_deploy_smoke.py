"""The image check's mission flow (deploy/docker/smoke.py) passes against ``missionlink
serve`` on the embedded default, so a change to the contract breaks this test rather than
only the container check at the end of CI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers import start_serve, stop_process

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_image_smoke_flow_passes_on_the_embedded_default(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
    env["MISSIONLINK_DATA_DIR"] = str(tmp_path / "data")
    proc = start_serve(env, port, tmp_path / "serve.log")
    try:
        smoke = subprocess.run(
            [sys.executable, str(ROOT / "deploy/docker/smoke.py"), f"http://127.0.0.1:{port}",
             "--settle-timeout", "60"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert "MISSION_ID=" in smoke.stdout
    finally:
        stop_process(proc)
