"""Processes a benchmark starts: free ports, servers in their own process group (so the
whole group, uvicorn's workers included, is ended), waiting for health, the process table."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def clean_env() -> dict[str, str]:
    """This process's environment without any ``MISSIONLINK_*`` setting of the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}


def spawn_group(argv: list[str], env: dict[str, str], log: Path,
                cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """``argv`` in its own session, output to ``log``, so ``stop_group`` ends all it forks."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=cwd)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """End a process started with ``start_new_session=True`` and everything it forked."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def proc_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (comm, ppid, CPU ticks of the process itself) for every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        table[int(entry)] = (comm, int(rest[1]), int(rest[11]) + int(rest[12]))
    return table


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (uvicorn's workers under its supervisor)."""
    return [child for child, (_, ppid, _) in proc_table().items() if ppid == pid]


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


async def wait_healthy(proc: subprocess.Popen[bytes], url: str, *, workers: int = 1,
                       log: Path, within: float = 60) -> None:
    """Until ``url`` answers 200 and, with several workers, each worker process exists;
    ``RuntimeError`` with the log's tail if the server exits or the time runs out."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{log_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200 and (
                        workers == 1 or len(children(proc.pid)) >= workers):
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server did not become healthy:\n{log_tail(log)}")
