"""What the deployment guards take from the product's own files, in one place: the health
routes (``api/routers/health.py``), the worker's health routes (``workers/health.py``), the
``serve`` port (``cli.py``), the worker's metrics port and the API's internal metrics port
(``config.py``), and the settings ``config.py`` types ``SecretStr`` (credentials whatever
their name). ``deploy/docker/guards.py`` and ``deploy/k8s/guards.py`` both check against
these."""

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
    match = re.search(r'"--port",\s*type=int,\s*default=(\d+|DEFAULT_PORT)\b', text)
    assert match, "cli.py: serve --port default not found"
    if match.group(1) != "DEFAULT_PORT":
        return int(match.group(1))
    # The default named in config.py, where the settings derive PUBLIC_URL from it too.
    named = re.search(r"^DEFAULT_PORT = (\d+)$", (SRC / "config.py").read_text(), re.M)
    assert named, "config.py: DEFAULT_PORT not found"
    return int(named.group(1))


def _config_default(name: str) -> int:
    text = (SRC / "config.py").read_text()
    match = re.search(rf"^    {name}: int = Field\(default=(\d+)", text, re.M)
    assert match, f"config.py: {name} default not found"
    return int(match.group(1))


def metrics_default_port() -> int:
    """``METRICS_PORT``: where ``missionlink worker`` serves /metrics, /healthz, /readyz."""
    return _config_default("metrics_port")


def api_metrics_default_port() -> int:
    """``API_METRICS_PORT``: the first of the ``serve`` processes' internal metrics ports."""
    return _config_default("api_metrics_port")


def worker_health_paths() -> dict[str, str]:
    """The worker listener's liveness and readiness routes, as workers/health.py names them."""
    text = (SRC / "workers" / "health.py").read_text()
    found = dict(re.findall(r'^(HEALTH_PATH|READY_PATH) = "([^"]+)"', text, re.M))
    assert set(found) == {"HEALTH_PATH", "READY_PATH"}, "workers/health.py: routes not found"
    return {"liveness": found["HEALTH_PATH"], "readiness": found["READY_PATH"]}


def secret_typed_settings() -> set[str]:
    """MISSIONLINK_<NAME> of every setting config.py types ``SecretStr``: a credential
    whatever its name says, so the secret guards need no new pattern for it."""
    text = (SRC / "config.py").read_text()
    names = re.findall(r"^    ([a-z_]+): [^=\n]*\bSecretStr\b", text, re.M)
    return {f"MISSIONLINK_{n.upper()}" for n in names}
