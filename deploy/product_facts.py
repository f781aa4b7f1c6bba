"""What the deployment guards take from the product's own files, in one place: the health
routes (``api/routers/health.py``), the ``serve`` port (``cli.py``) and the worker's metrics
port (``config.py``). ``deploy/docker/guards.py`` and ``deploy/k8s/guards.py`` both check
against these."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "missionlink"


def health_paths() -> dict[str, str]:
    """The API's liveness and readiness routes, as health.py declares them."""
    text = (SRC / "api" / "routers" / "health.py").read_text()
    routes = re.findall(r'@router\.get\(\s*"([^"]+)".*?async def (\w+)', text, re.S)
    found = {fn: path for path, fn in routes}
    return {"liveness": found["healthz"], "readiness": found["readyz"]}


def serve_default_port() -> int:
    text = (SRC / "cli.py").read_text()
    match = re.search(r'"--port",\s*type=int,\s*default=(\d+)', text)
    assert match, "cli.py: serve --port default not found"
    return int(match.group(1))


def metrics_default_port() -> int:
    text = (SRC / "config.py").read_text()
    match = re.search(r"metrics_port: int = Field\(default=(\d+)", text)
    assert match, "config.py: metrics_port default not found"
    return int(match.group(1))
