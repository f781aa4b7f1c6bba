"""The servers under test: ``missionlink serve --workers N`` and the bare endpoint
(``bench/bare_pledge_app.py``), each in its own process group, and what must be undone."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.databases import redis_url
from benchkit.processes import (
    children,
    clean_env,
    free_port,
    log_tail,
    spawn_group,
    stop_group,
    wait_healthy,
)

BENCH_DIR = Path(__file__).resolve().parent.parent


@dataclass
class State:
    """Everything that must be undone at the end, whatever happens."""

    admin_url: str
    prefix: str
    tmp: Path
    databases: list[str] = field(default_factory=list)
    server: subprocess.Popen[bytes] | None = None


#: ``--set NAME=VALUE``: settings of the server under test, on top of the ones below.
SERVER_SETTINGS: dict[str, str] = {}


def server_env(urls: dict[str, str], data_dir: Path) -> dict[str, str]:
    env = clean_env()
    env.update({
        # As deployed: JSON log lines, one a request.
        "MISSIONLINK_ENV": "staging",
        "MISSIONLINK_METRICS_PORT": "0",
        "MISSIONLINK_DATABASE_URL": urls["core"],
        "MISSIONLINK_IDENTITY_DATABASE_URL": urls["identity"],
        "MISSIONLINK_DATA_DIR": str(data_dir),
        "MISSIONLINK_RATE_LIMIT_PLEDGES_PER_MINUTE": "0",
        "MISSIONLINK_SERVE_WORKER": "0",
        "MISSIONLINK_ACCESS_TOKEN_SECONDS": "3600",
        # shared by every process, as `serve --workers` above 1 requires
        "MISSIONLINK_BROKER_URL": redis_url(),
    })
    env.update({f"MISSIONLINK_{k.upper()}": v for k, v in SERVER_SETTINGS.items()})
    return env


def server_log(state: State, workers: int) -> Path:
    return state.tmp / f"serve-w{workers}.log"


def spawn_server(state: State, urls: dict[str, str], workers: int, port: int) -> None:
    """``missionlink serve`` in its own session, so the whole process group can be ended."""
    state.server = spawn_group(
        [sys.executable, "-m", "missionlink.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers)],
        server_env(urls, state.tmp), server_log(state, workers))


async def start_server(state: State, urls: dict[str, str], workers: int) -> int:
    """A healthy ``serve --workers N`` (each worker process up) on a free port."""
    port = free_port()
    spawn_server(state, urls, workers, port)
    assert state.server is not None
    await wait_healthy(state.server, f"http://127.0.0.1:{port}/healthz", workers=workers,
                       log=server_log(state, workers))
    return port


def server_children(state: State) -> list[int]:
    return [] if state.server is None else children(state.server.pid)


def server_log_tail(state: State, workers: int) -> str:
    return log_tail(server_log(state, workers))


def spawn_bare(state: State, env: dict[str, str], port: int) -> None:
    """``bench/bare_pledge_app.py`` under uvicorn, served as ``missionlink serve`` is."""
    state.server = spawn_group(
        [sys.executable, "-m", "uvicorn", "bare_pledge_app:app", "--app-dir", str(BENCH_DIR),
         "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
         "--no-access-log", "--log-level", "warning"],
        env, state.tmp / "bare.log")


def stop_server(state: State) -> None:
    proc = state.server
    if proc is None:
        return
    state.server = None
    stop_group(proc)
