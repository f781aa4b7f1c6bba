"""pgbench (TPC-B) into the run's own database on the same server: the yardstick."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from typing import Any

from benchkit.cpu import cpu_delta, cpu_snapshot
from benchkit.run import say_elapsed as say
from sqlalchemy.engine import make_url


async def run_pgbench(url: str, scale: int, clients: int, threads: int, seconds: int
                      ) -> dict[str, Any]:
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    conn_args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
                 "-U", parsed.username or "postgres"]
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise RuntimeError("pgbench is not installed (apt-get install postgresql-client)")

    async def run(*args: str, sample: float = 0) -> tuple[str, dict[str, float]]:
        proc = await asyncio.create_subprocess_exec(
            pgbench, *conn_args, *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        cpu: dict[str, float] = {}
        if sample > 0:  # PostgreSQL's CPU in the middle of the run, while its backends live
            await asyncio.sleep(2)
            before, t0 = cpu_snapshot(proc.pid, parsed.database or ""), time.perf_counter()
            await asyncio.sleep(sample)
            cpu = cpu_delta(before, cpu_snapshot(proc.pid, parsed.database or ""),
                            time.perf_counter() - t0)
        out, _ = await proc.communicate()
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"pgbench {' '.join(args)} failed:\n{text[-2000:]}")
        return text, cpu

    say(f"pgbench -i -s {scale} into {parsed.database}")
    await run("-i", "-q", "-s", str(scale), parsed.database or "")
    say(f"pgbench -c {clients} -j {threads} -T {seconds} (TPC-B)")
    text, cpu = await run("-c", str(clients), "-j", str(threads), "-T", str(seconds),
                          parsed.database or "", sample=max(1.0, seconds - 4))
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    latency = re.search(r"latency average = ([0-9.]+) ms", text)
    if tps is None:
        raise RuntimeError(f"could not read pgbench's tps:\n{text}")
    return {"tps": float(tps.group(1)), "latency_avg_ms": float(latency.group(1)) if latency
            else None, "postgres_cores": round(cpu["postgres"], 2),
            "pgbench_client_cores": round(cpu["server"], 2),
            "other_cores": round(cpu["other"], 2),
            "machine_busy_%": round(cpu["machine_busy_%"], 1),
            "command": f"pgbench -c {clients} -j {threads} -T {seconds} (scale {scale})"}
