"""Public read benchmark: ``GET /api/v1/missions/{id}`` against a bare Starlette JSON app.

In one run, on the same machine and with the same load generator settings:

1. seeds a streamer, a backer and one accepted mission with a few pledges, straight
   through SQL, into fresh databases: SQLite in a temporary ``MISSIONLINK_DATA_DIR``
   (always), and PostgreSQL when ``MISSIONLINK_BENCH_POSTGRES_URL`` is set (its own
   uniquely named databases, dropped at the end);
2. for each backend starts ``missionlink serve`` (SQLite: 1 worker; PostgreSQL:
   ``--pg-workers``, default 2) and a bare Starlette app that answers the same JSON body
   under uvicorn with the same number of workers, the same HTTP protocol and event loop;
3. drives both with ``wrk`` (same threads, connections and duration, after a warm-up)
   and reports req/s, latency percentiles and the ratio MissionLink / bare.

``--profile DIR`` adds a phase per backend in which py-spy samples the (single-worker)
server under the same load and writes a flame graph and the top functions; it is not
counted in the figures. ``--short`` runs in about 20 s (SQLite, short phases) so CI can
keep the script working. The exit status is 1 when the run itself broke (an answer other
than 2xx, or no request answered at all), never because of a speed. Results and how to
read them: bench/README.md, "Reads".

    .venv/bin/python bench/reads.py [--short] [--duration 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from benchkit.databases import (  # type: ignore[import-not-found]
    create_databases,
    drop_databases,
    redis_url,
)
from benchkit.machine import machine_facts  # type: ignore[import-not-found]
from benchkit.processes import (  # type: ignore[import-not-found]
    children,
    clean_env,
    free_port,
    spawn_group,
    stop_group,
    wait_healthy,
)
from benchkit.profiling import find_py_spy, record_argv  # type: ignore[import-not-found]
from benchkit.run import Broken, say, sigterm_unwinds  # type: ignore[import-not-found]
from sqlalchemy import insert

from missionlink.adapters.db.core_tables import channels, members, mission_totals, missions
from missionlink.adapters.db.core_tables import pledges as pledge_rows
from missionlink.adapters.db.engine import Database
from missionlink.adapters.db.identity_tables import users
from missionlink.config import Settings
from missionlink.migrations.runner import upgrade_all

BACKERS = 25

BARE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

BODY = json_body = {body!r}


async def show(request):
    return JSONResponse(BODY)


app = Starlette(routes=[Route("/api/v1/missions/{{mission_id:int}}", show)])
'''


@dataclass
class State:
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pg_databases: list[str] = field(default_factory=list)
    admin_url: str = ""


# --- seed -------------------------------------------------------------------------------

async def seed(settings: Settings) -> int:
    """One accepted mission open for a day, with ``BACKERS`` pledges; returns its id."""
    now = datetime.now(UTC).replace(microsecond=0)
    identity = Database(settings.identity_url)
    core = Database(settings.core_url)
    try:
        async with identity.begin() as conn:
            rows = [{"email": f"bench-{role}@example.com",
                     "email_normalized": f"bench-{role}@example.com", "password_hash": "x",
                     "display_name": f"Bench {role}", "role": role, "language": "ko",
                     "created_at": now} for role in ("streamer", "viewer")]
            result = await conn.execute(
                insert(users).returning(users.c.id, sort_by_parameter_order=True), rows)
            streamer, fan = (r.id for r in result)
        async with core.begin() as conn:
            await conn.execute(insert(members), [
                {"user_id": streamer, "display_name": "Bench streamer", "role": "streamer",
                 "created_at": now},
                {"user_id": fan, "display_name": "Bench viewer", "role": "viewer",
                 "created_at": now},
            ])
            await conn.execute(insert(channels).values(
                streamer_id=streamer, missions_enabled=True, min_mission_amount=1000,
                accept_timeout_seconds=3600, overlay_token=secrets.token_urlsafe(24),
                updated_at=now))
            mission_id = await conn.scalar(insert(missions).values(
                streamer_id=streamer, creator_id=fan, title="매운 라면 먹기 (bench)",
                description="a read benchmark mission", status="accepted",
                fee_bps=settings.platform_fee_bps, created_at=now,
                accept_by=now + timedelta(hours=1), deadline_at=now + timedelta(days=1),
                accepted_at=now).returning(missions.c.id))
            assert mission_id is not None
            await conn.execute(insert(pledge_rows), [
                {"mission_id": mission_id, "user_id": fan, "amount": 1000, "created_at": now}
                for _ in range(BACKERS)])
            await conn.execute(insert(mission_totals).values(
                mission_id=mission_id, shard=0, amount=1000 * BACKERS, pledges=BACKERS))
        return int(mission_id)
    finally:
        await identity.dispose()
        await core.dispose()


async def create_pg_databases(state: State) -> dict[str, str]:
    prefix = f"ml_bench_reads_{os.getpid()}_{secrets.token_hex(3)}"
    return dict(await create_databases(state.admin_url, prefix, ["identity", "core"],
                                       state.pg_databases))


# --- servers ----------------------------------------------------------------------------

def server_env(data_dir: Path, urls: dict[str, str]) -> dict[str, str]:
    env = clean_env()
    env.update({"MISSIONLINK_DATA_DIR": str(data_dir), "MISSIONLINK_SERVE_WORKER": "0",
                "MISSIONLINK_METRICS_PORT": "0", "MISSIONLINK_ENV": "staging",
                "MISSIONLINK_PUBLIC_URL": "http://127.0.0.1"})
    if urls:
        env["MISSIONLINK_DATABASE_URL"] = urls["core"]
        env["MISSIONLINK_IDENTITY_DATABASE_URL"] = urls["identity"]
        # shared by every process, as `serve --workers` above 1 requires
        env["MISSIONLINK_BROKER_URL"] = redis_url()
    return env


def spawn(state: State, argv: list[str], env: dict[str, str], log_name: str
          ) -> subprocess.Popen[bytes]:
    """In its own session, so the whole process group (uvicorn's workers) can be ended."""
    proc = spawn_group(argv, env, state.tmp / log_name, cwd=state.tmp)
    state.procs.append(proc)
    return proc


def stop(state: State, proc: subprocess.Popen[bytes]) -> None:
    stop_group(proc)
    if proc in state.procs:
        state.procs.remove(proc)


async def start_missionlink(state: State, data_dir: Path, urls: dict[str, str], workers: int,
                            mission_id: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    name = f"serve-{'pg' if urls else 'sqlite'}-w{workers}.log"
    proc = spawn(state, [sys.executable, "-m", "missionlink.cli", "serve", "--host",
                         "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                 server_env(data_dir, urls), name)
    url = f"http://127.0.0.1:{port}/api/v1/missions/{mission_id}"
    await wait_healthy(proc, url, workers=workers, log=state.tmp / name)
    return proc, url


async def start_bare(state: State, body: dict[str, Any], workers: int, mission_id: int
                     ) -> tuple[subprocess.Popen[bytes], str]:
    """uvicorn with the protocol and loop ``missionlink serve`` uses (httptools, uvloop)."""
    (state.tmp / "bare_app.py").write_text(BARE_APP.format(body=body))
    port = free_port()
    name = f"bare-w{workers}.log"
    proc = spawn(state, [sys.executable, "-m", "uvicorn", "bare_app:app", "--host",
                         "127.0.0.1", "--port", str(port), "--workers", str(workers),
                         "--http", "httptools", "--loop", "auto", "--no-access-log",
                         "--log-level", "warning", "--app-dir", str(state.tmp)],
                 clean_env(), name)
    url = f"http://127.0.0.1:{port}/api/v1/missions/{mission_id}"
    await wait_healthy(proc, url, workers=workers, log=state.tmp / name)
    return proc, url


# --- load -------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def wrk(url: str, *, threads: int, connections: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result = {"rps": rps}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = _ms(m.group(1)) if m else float("nan")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    result["non_2xx"] = float(bad.group(1)) if bad else 0.0
    if errors:
        say(f"    wrk socket errors: {errors.group(1)}")
    return result


def drive(url: str, args: argparse.Namespace) -> dict[str, float]:
    wrk(url, threads=args.threads, connections=args.connections, seconds=args.warmup)
    return wrk(url, threads=args.threads, connections=args.connections, seconds=args.duration)


def profile(state: State, proc: subprocess.Popen[bytes], url: str, label: str,
            args: argparse.Namespace) -> dict[str, Any]:
    """py-spy samples the serving process while wrk drives it (not counted in the figures)."""
    out_dir = Path(args.profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    pids = children(proc.pid) or [proc.pid]
    target = max(pids)  # uvicorn's worker when there is a supervisor, else the server
    raw = out_dir / f"{label}.txt"
    spy = subprocess.Popen(
        record_argv(find_py_spy() or "py-spy", target, args.duration, raw),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    wrk(url, threads=args.threads, connections=args.connections, seconds=args.duration)
    spy.wait(timeout=60)
    return summarize(raw.read_text()) if raw.exists() else {}


def summarize(collapsed: str) -> dict[str, Any]:
    """Share of samples in which each of a few named layers is on the stack."""
    layers = {
        "front layer (ours, outside uvicorn's send)": ("api/fast_path.py",),
        "middleware (ours)": ("api/middleware.py", "observability/http.py"),
        "request log line": ("structlog",),
        "routing + dependency solving": ("fastapi/dependencies", "starlette/routing.py"),
        "response validation/serialisation": ("fastapi/_compat", "serialize_response",
                                              "jsonable_encoder"),
        "json encoding": ("json/encoder.py", "orjson", "render ("),
        "database": ("sqlalchemy", "aiosqlite", "asyncpg"),
        "read cache": ("read_cache.py",),
        "uvicorn/httptools": ("uvicorn/protocols",),
    }
    total = 0
    hits = dict.fromkeys(layers, 0)
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for name, needles in layers.items():
            if any(needle in stack for needle in needles) and not (
                    name.startswith("front layer") and "RequestResponseCycle.send" in stack):
                hits[name] += n
    return {name: round(100 * n / total, 1) for name, n in hits.items()} if total else {}


# --- run --------------------------------------------------------------------------------

async def measure(state: State, args: argparse.Namespace, backend: str, workers: int
                  ) -> dict[str, Any]:
    data_dir = state.tmp / f"data-{backend}"
    data_dir.mkdir()
    urls = await create_pg_databases(state) if backend == "postgres" else {}
    env_urls = {"database_url": urls.get("core", ""),
                "identity_database_url": urls.get("identity", "")}
    settings = Settings(data_dir=data_dir, **env_urls)  # type: ignore[arg-type]
    await asyncio.to_thread(upgrade_all, settings)
    mission_id = await seed(settings)
    result: dict[str, Any] = {"backend": backend, "workers": workers}

    proc, url = await start_missionlink(state, data_dir, urls, workers, mission_id)
    async with httpx.AsyncClient() as client:
        body = (await client.get(url)).json()
    say(f"  {backend}: missionlink serve, {workers} worker(s) ...")
    result["missionlink"] = await asyncio.to_thread(drive, url, args)
    if args.single:
        result["missionlink_1conn"] = await asyncio.to_thread(
            wrk, url, threads=1, connections=1, seconds=args.duration / 2)
    if args.profile and workers == 1:
        result["profile"] = await asyncio.to_thread(profile, state, proc, url,
                                                    f"missionlink-{backend}", args)
    stop(state, proc)

    proc, url = await start_bare(state, body, workers, mission_id)
    say(f"  {backend}: bare Starlette, {workers} worker(s) ...")
    result["bare"] = await asyncio.to_thread(drive, url, args)
    if args.single:
        result["bare_1conn"] = await asyncio.to_thread(
            wrk, url, threads=1, connections=1, seconds=args.duration / 2)
    stop(state, proc)
    result["ratio"] = round(result["missionlink"]["rps"] / result["bare"]["rps"], 3)
    await drop_databases(state.admin_url, state.pg_databases)
    return result


def machine() -> dict[str, Any]:
    return {**machine_facts(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


async def bench(state: State, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "method": {
        "threads": args.threads, "connections": args.connections, "seconds": args.duration,
        "warmup_seconds": args.warmup}, "runs": []}
    say(f"machine: {results['machine']}")
    results["runs"].append(await measure(state, args, "sqlite", 1))
    if state.admin_url and not args.short:
        results["runs"].append(await measure(state, args, "postgres", args.pg_workers))
    return results


def broken(results: dict[str, Any]) -> list[str]:
    """What makes the run unusable: never a speed, only answers that are not answers."""
    problems = []
    for run in results["runs"]:
        for side in ("missionlink", "bare", "missionlink_1conn", "bare_1conn"):
            if side not in run:
                continue
            if run[side]["non_2xx"]:
                problems.append(f"{run['backend']} {side}: {run[side]['non_2xx']:.0f} answers "
                                "other than 2xx")
            if not run[side]["rps"]:
                problems.append(f"{run['backend']} {side}: no request was answered")
    return problems


def report(results: dict[str, Any]) -> None:
    say("")
    say("| backend | workers | MissionLink req/s | p50 / p99 ms | bare Starlette req/s "
        "| ratio |")
    say("|---|---|---|---|---|---|")
    for run in results["runs"]:
        ml, bare = run["missionlink"], run["bare"]
        say(f"| {run['backend']} | {run['workers']} | {ml['rps']:,.0f} | "
            f"{ml['p50_ms']:.1f} / {ml['p99_ms']:.1f} | {bare['rps']:,.0f} | "
            f"**{run['ratio']:.3f}x** |")
        if "missionlink_1conn" in run:
            one = run["missionlink_1conn"]
            say(f"    one connection: {1000 / one['rps']:.2f} ms a request "
                f"(bare {1000 / run['bare_1conn']['rps']:.2f} ms)")
        if ml["non_2xx"]:
            say(f"    WARNING: {ml['non_2xx']:.0f} non-2xx answers from MissionLink")
        if "profile" in run:
            say(f"    profile (% of samples on stack): {run['profile']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--short", action="store_true", help="SQLite only, short phases (~20 s)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk phase")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--pg-workers", type=int, default=2)
    p.add_argument("--single", action="store_true",
                   help="also measure one connection (the cost of one request)")
    p.add_argument("--profile", metavar="DIR", help="add a py-spy sampled phase per backend")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = p.parse_args(argv)
    if args.short:
        args.duration, args.warmup = 4.0, 1.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("bench/reads.py needs wrk (apt-get install wrk)")
    if args.profile and find_py_spy() is None:
        sys.exit("--profile needs py-spy (pip install py-spy)")
    state = State(tmp=Path(tempfile.mkdtemp(prefix="ml-bench-reads-")),
                  admin_url=os.environ.get("MISSIONLINK_BENCH_POSTGRES_URL", ""))

    with sigterm_unwinds():
        try:
            results = asyncio.run(bench(state, args))
            report(results)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
            problems = broken(results)
            if problems:
                raise Broken("; ".join(problems))
            return 0
        except Broken as exc:
            print(f"bench: BROKEN RUN: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            for proc in list(state.procs):
                stop(state, proc)
            if state.pg_databases:
                asyncio.run(drop_databases(state.admin_url, state.pg_databases))
            shutil.rmtree(state.tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
