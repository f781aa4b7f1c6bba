"""What several benchmarks share: ports, process groups, RSS, and their own PostgreSQL databases.

Imported by the scripts beside it (``python bench/<name>.py`` puts this directory on the
path). Nothing here measures anything: it starts, stops and cleans up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


class Broken(RuntimeError):
    """The run itself went wrong (errors from the server, a ledger that does not reconcile,
    nothing measured): the script exits 1. A slow figure is never one of these."""


def say(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def admin_url() -> str:
    return os.environ.get("MISSIONLINK_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)


def redis_url() -> str:
    return os.environ.get("MISSIONLINK_BENCH_REDIS_URL", DEFAULT_REDIS_URL)


def db_url(admin: str, name: str) -> str:
    """The admin URL pointed at database ``name``, password kept, plain ``postgresql://``."""
    url = make_url(admin).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


async def admin_exec(admin: str, sql: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE) on the admin database."""
    import asyncpg

    conn = await asyncpg.connect(db_url(admin, make_url(admin).database or "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def drop_databases(admin: str, names: list[str]) -> None:
    """Drop every name in ``names`` (emptying the list); one failure does not stop the rest."""
    while names:
        name = names.pop()
        try:
            await admin_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:
            print(f"bench: could not drop database {name}: {exc}", file=sys.stderr)


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


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so ``finally`` blocks drop databases and stop servers."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(run: Callable[[], int | None]) -> int:
    """Run ``run()`` and turn a broken run into exit status 1 with a one-line reason."""
    try:
        with sigterm_unwinds():
            result = run()
    except Broken as exc:
        print(f"bench: BROKEN RUN: {exc}", file=sys.stderr, flush=True)
        return 1
    return int(result or 0)
