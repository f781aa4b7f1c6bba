"""CPU used in a phase: by this process (the client), a server's process tree, and the
PostgreSQL processes that work for this run; and how busy the machine was otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.databases import pg_sessions
from benchkit.processes import proc_table

CLK_TCK = os.sysconf("SC_CLK_TCK")


def postgres_pids(table: dict[int, tuple[str, int, int]], prefix: str) -> dict[int, int]:
    """PostgreSQL processes that work for us -> CPU ticks: backends on this run's databases
    (by their process title) and the shared WAL writer, checkpointer, background writer and
    autovacuum. Backends of other databases on a shared server are left out."""
    ours = {}
    for pid, (comm, _, ticks) in table.items():
        if not comm.startswith("postgres"):
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        backend = "(" in title and ")" in title  # "postgres: user db host(port) state"
        if prefix in title or (title.startswith("postgres: ") and not backend):
            ours[pid] = ticks
    return ours


def _machine_busy() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


@dataclass
class CpuSnap:
    client: float  # seconds of this process
    server: dict[int, int]  # pid -> ticks, the server's process tree
    postgres: dict[int, int]  # pid -> ticks, see postgres_pids
    busy: int  # machine-wide ticks, all CPUs
    total: int
    sessions: int = 0


def cpu_snapshot(server_pid: int | None, prefix: str) -> CpuSnap:
    table = proc_table()
    tree = set()
    if server_pid is not None:
        tree.add(server_pid)
        grew = True
        while grew:
            grew = False
            for pid, (_, ppid, _) in table.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
    busy, total = _machine_busy()
    return CpuSnap(client=sum(os.times()[:2]),
                   server={p: table[p][2] for p in tree if p in table},
                   postgres=postgres_pids(table, prefix), busy=busy, total=total)


def _grown(before: dict[int, int], after: dict[int, int]) -> float:
    """Seconds of CPU used in between by the processes in ``after`` (last seen ticks)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / CLK_TCK


def cpu_delta(before: CpuSnap, after: CpuSnap, seconds: float) -> dict[str, float]:
    """Cores used on average: client (this process), server, postgres, other (contamination:
    anything else on the machine, other users or the kernel), and how busy the machine was."""
    out = {"client": (after.client - before.client) / seconds,
           "server": _grown(before.server, after.server) / seconds,
           "postgres": _grown(before.postgres, after.postgres) / seconds}
    total = after.total - before.total
    busy = (after.busy - before.busy) / total if total else 0.0
    out["other"] = max(0.0, busy * (os.cpu_count() or 1) - sum(out.values()))
    out["machine_busy_%"] = 100 * busy
    return out


@dataclass
class Meter:
    """CPU of client, server tree and PostgreSQL, and new core-database sessions.

    PostgreSQL backends come and go when a connection pool overflows, so their CPU is sampled
    every 0.2 s during a phase: a backend that lived between two samples is still missed."""

    server_pid: int | None
    admin_url: str
    core_db: str
    prefix: str
    seen: dict[int, int] = field(default_factory=dict)
    sampler: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.seen.update(postgres_pids(proc_table(), self.prefix))

    async def start(self) -> CpuSnap:
        snap = cpu_snapshot(self.server_pid, self.prefix)
        snap.sessions = await pg_sessions(self.admin_url, self.core_db)
        self.seen = dict(snap.postgres)
        self.sampler = asyncio.create_task(self._sample())
        return snap

    async def stop(self, before: CpuSnap, seconds: float) -> dict[str, float]:
        if self.sampler is not None:
            self.sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sampler
        after = cpu_snapshot(self.server_pid, self.prefix)
        self.seen.update(after.postgres)
        after.postgres = self.seen
        after.sessions = await pg_sessions(self.admin_url, self.core_db)
        out = cpu_delta(before, after, seconds)
        out["new_pg_sessions"] = after.sessions - before.sessions
        return out
