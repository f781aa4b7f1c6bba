"""One run of the pledge benchmark: databases, seed, pgbench, the phases against each
server (and the bare endpoint), the verification, the summary; ``main`` for bench/pledges.py."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit.cpu import Meter
from benchkit.databases import admin_url, create_databases, drop_databases, server_facts
from benchkit.machine import machine_facts
from benchkit.processes import clean_env, free_port, wait_healthy
from benchkit.run import T0, sigterm_unwinds
from benchkit.run import say_elapsed as say
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from missionlink.adapters.db.core_tables import pledges
from missionlink.adapters.db.engine import Database
from missionlink.config import Settings
from missionlink.migrations.runner import upgrade_all
from missionlink.services.reconcile import check
from pledge_bench.clients import Requests
from pledge_bench.pgbench import run_pgbench
from pledge_bench.phases import Phase, closed_loop, open_loop, show
from pledge_bench.profile import profile_phase
from pledge_bench.seeding import FAN_CASH, Seed, create_missions, seed_backlog, seed_users
from pledge_bench.server import (
    SERVER_SETTINGS,
    State,
    server_log_tail,
    spawn_bare,
    start_server,
    stop_server,
)

#: The bare endpoint's pool: PostgreSQL's default max_connections is 100.
BARE_POOL_MAX = 40


async def measure_server(state: State, args: argparse.Namespace, settings: Settings, seed: Seed,
                         port: int, reqs: Requests, meter: Meter, label: str,
                         spread_ids: list[int], hot_id: int, out: dict[str, Any]) -> list[Phase]:
    """Phases (a) spread, (b) hot, (c) half-peak, (d) deep hot mission against one server."""
    warm, _ = await closed_loop(f"{label} warmup", port, reqs, spread_ids, args.concurrency,
                                args.warmup, 20, meter)
    show(warm)
    spread, _ = await closed_loop(f"{label} (a) spread", port, reqs, spread_ids,
                                  args.concurrency, args.requests, args.seconds, meter)
    show(spread)
    hot, hot_start = await closed_loop(f"{label} (b) hot", port, reqs, [hot_id],
                                       args.concurrency, args.requests, args.seconds, meter)
    show(hot)
    quarters = hot.quarter_rates(hot_start)
    say(f"{label} (b) hot, pledges/s by quarter of the phase: "
        + ", ".join(f"{q:.0f}" for q in quarters))
    peak = max(spread.rate, hot.rate)
    paced = await open_loop(f"{label} (c) half-peak", port, reqs, spread_ids, peak / 2,
                            args.paced_seconds, meter)
    show(paced)
    phases = [warm, spread, hot, paced]
    out.update({
        "spread": spread.summary(), "hot": hot.summary(),
        "hot_quarters_per_s": [round(q, 1) for q in quarters], "half_peak": paced.summary(),
        "hot_vs_spread": round(hot.rate / spread.rate, 3),
        "spread_missions": len(spread_ids), "hot_mission": hot_id,
    })
    if args.hot_backlog > 0:
        (deep_id,) = await create_missions(settings, seed, 1, f"{label} deep")
        await seed_backlog(settings, seed, deep_id, args.hot_backlog)
        say(f"mission {deep_id}: seeded {args.hot_backlog} earlier pledges (vacuumed)")
        deep, _ = await closed_loop(f"{label} (d) hot, {args.hot_backlog} earlier pledges",
                                    port, reqs, [deep_id], args.concurrency, args.requests,
                                    args.seconds / 2, meter)
        show(deep)
        phases.append(deep)
        out["hot_with_backlog"] = deep.summary() | {"earlier_pledges": args.hot_backlog}
    if args.profile:
        profiled, prof = await profile_phase(state, port, reqs, spread_ids, args.concurrency,
                                             args.profile_seconds, Path(args.profile), label,
                                             meter)
        if profiled is not None:
            phases.append(profiled)
        out["profile"] = prof
    out["created"] = sum(ph.created for ph in phases)
    return phases


async def measure_bare(state: State, args: argparse.Namespace, urls: dict[str, str],
                       reqs: Requests, mission_ids: list[int]) -> Phase:
    """Phase (a) against ``bench/bare_pledge_app.py``: the same client and load on an
    endpoint that only parses the request and makes one INSERT (in this run's pgbench
    database), served by uvicorn as ``serve`` is. Its rate is the ceiling of a Python HTTP
    endpoint with one round trip per request on this machine."""
    port = free_port()
    env = clean_env()
    env.update({"BARE_DSN": urls["pgbench"].replace("postgresql+asyncpg://", "postgresql://"),
                # one pool connection per request in flight, within max_connections
                "BARE_POOL": str(min(args.concurrency, BARE_POOL_MAX))})
    spawn_bare(state, env, port)
    proc = state.server
    assert proc is not None
    try:
        try:
            await wait_healthy(proc, f"http://127.0.0.1:{port}/healthz",
                               log=state.tmp / "bare.log", within=30)
        except RuntimeError as exc:
            raise RuntimeError("the bare endpoint did not start:\n"
                               + (state.tmp / "bare.log").read_text(errors="replace")) from exc
        meter = Meter(proc.pid, state.admin_url, make_url(urls["pgbench"]).database or "",
                      state.prefix)
        warm, _ = await closed_loop("bare warmup", port, reqs, mission_ids, args.concurrency,
                                    args.warmup, 20, meter)
        show(warm)
        phase, _ = await closed_loop("bare (a) spread", port, reqs, mission_ids,
                                     args.concurrency, args.requests, args.seconds, meter)
        show(phase)
        return phase
    finally:
        stop_server(state)


def code_facts() -> dict[str, Any]:
    """The machine, and which missionlink code the server runs (commit, uncommitted)."""
    import missionlink

    code = Path(missionlink.__file__).resolve().parent  # what the server will run too
    try:
        commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "."],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += " + uncommitted changes" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "not a git checkout"
    return {**machine_facts(), "code": str(code), "commit": commit}


async def bench(state: State, args: argparse.Namespace) -> dict[str, Any]:
    facts = {**code_facts(), **await server_facts(state.admin_url)}
    say(f"code under test: {facts['code']} ({facts['commit']})")
    if SERVER_SETTINGS:
        say(f"server settings: {SERVER_SETTINGS}")
    say(f"machine: {facts['nproc']} CPUs, {facts['cpu_model']}; PostgreSQL "
        f"{facts['server_version']}, synchronous_commit={facts['synchronous_commit']}, "
        f"fsync={facts['fsync']}")
    if facts["synchronous_commit"] != "on" or facts["fsync"] != "on":
        say("WARNING: commits are not durable on this server; the figures are not comparable")
    urls = await create_databases(state.admin_url, state.prefix,
                                  ["identity", "core", "pgbench"], state.databases)
    say(f"created databases {', '.join(state.databases)}")
    settings = Settings(database_url=urls["core"], identity_database_url=urls["identity"],
                        data_dir=state.tmp)
    await asyncio.to_thread(upgrade_all, settings)
    say("migrated identity and core")
    seed = await seed_users(settings, args.fans, args.streamers)
    say(f"seeded {len(seed.fans)} fans with {FAN_CASH} KRW each and "
        f"{len(seed.streamers)} streamers")

    results: dict[str, Any] = {"machine": facts, "args": vars(args) | {"profile": None},
                               "servers": {}}
    if args.pgbench_seconds > 0:
        results["pgbench"] = await run_pgbench(urls["pgbench"], args.pgbench_scale,
                                               args.pgbench_clients, 2, args.pgbench_seconds)
        say(f"pgbench: {results['pgbench']['tps']:.0f} tps, latency avg "
            f"{results['pgbench']['latency_avg_ms']} ms; cores used: postgres "
            f"{results['pgbench']['postgres_cores']}, pgbench "
            f"{results['pgbench']['pgbench_client_cores']}, other "
            f"{results['pgbench']['other_cores']}")

    created_total = backlog_total = non_201 = 0
    for workers in args.workers:
        label = f"w{workers}"
        spread_ids = await create_missions(settings, seed, args.missions, f"{label} spread")
        (hot_id,) = await create_missions(settings, seed, 1, f"{label} hot")
        reqs = Requests(seed, f"{state.prefix}-{label}", keyed=not args.no_idempotency_key,
                        client_kind=args.client)
        port = await start_server(state, urls, workers)
        assert state.server is not None
        pid = state.server.pid
        meter = Meter(pid, state.admin_url, make_url(urls["core"]).database or "", state.prefix)
        say(f"serve --workers {workers} up on 127.0.0.1:{port} (pid {pid}); "
            f"{len(spread_ids)} spread missions, hot mission {hot_id}")
        out: dict[str, Any] = {}
        try:
            phases = await measure_server(state, args, settings, seed, port, reqs, meter,
                                          label, spread_ids, hot_id, out)
        except BaseException:
            say(f"server log (tail):\n{server_log_tail(state, workers)}")
            raise
        stop_server(state)
        created_total += sum(ph.created for ph in phases)
        non_201 += sum(n for ph in phases for code, n in ph.statuses.items() if code != 201)
        backlog_total += out.get("hot_with_backlog", {}).get("earlier_pledges", 0)
        if "pgbench" in results:
            peak = max(out["spread"]["pledges_per_s"], out["hot"]["pledges_per_s"])
            out["spread_vs_pgbench"] = round(out["spread"]["pledges_per_s"]
                                             / results["pgbench"]["tps"], 3)
            out["peak_vs_pgbench"] = round(peak / results["pgbench"]["tps"], 3)
        results["servers"][label] = out

    if args.bare:
        reqs = Requests(seed, f"{state.prefix}-bare", keyed=not args.no_idempotency_key,
                        client_kind=args.client)
        bare = await measure_bare(state, args, urls, reqs, list(range(1, args.missions + 1)))
        results["bare"] = bare.summary()
        non_201 += sum(n for code, n in bare.statuses.items() if code != 201)
        if "pgbench" in results:
            results["bare"]["vs_pgbench"] = round(bare.rate / results["pgbench"]["tps"], 3)
        for out in results["servers"].values():
            out["spread_vs_bare"] = round(out["spread"]["pledges_per_s"] / bare.rate, 3)

    say("verifying: reconcile.check and pledge rows == 201 responses")
    core = Database(settings.core_url)
    try:
        async with core.read() as conn:
            report = await check(conn)
            rows = int(await conn.scalar(select(func.count()).select_from(pledges)) or 0)
    finally:
        await core.dispose()
    results["verify"] = {"reconcile_ok": report.ok, "pledge_rows": rows,
                         "created_201": created_total, "seeded_backlog": backlog_total,
                         "match": rows == created_total + backlog_total,
                         "non_201": non_201}
    say(f"reconcile: {'all invariants hold' if report.ok else 'FAILED'}; pledge rows {rows}, "
        f"201 responses {created_total} + seeded backlog {backlog_total}")
    if not report.ok:
        print(report.render())
    return results


def print_summary(results: dict[str, Any]) -> None:
    pg = results.get("pgbench")
    print("\n=== pledge benchmark summary ===")
    if pg:
        print(f"pgbench TPC-B ({pg['command']}): {pg['tps']:.0f} tps")
    for label, r in results["servers"].items():
        s, h, p = r["spread"], r["hot"], r["half_peak"]
        print(f"serve --workers {label[1:]}: spread {s['pledges_per_s']:.0f}/s "
              f"(p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms); hot {h['pledges_per_s']:.0f}/s "
              f"(p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms); hot/spread {r['hot_vs_spread']}; "
              f"half-peak {p['target_rate']:.0f}/s -> p50 {p['p50_ms']} ms, "
              f"p99 {p['p99_ms']} ms")
        if "hot_with_backlog" in r:
            d = r["hot_with_backlog"]
            print(f"    hot mission with {d['earlier_pledges']} earlier pledges: "
                  f"{d['pledges_per_s']:.0f}/s (p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms)")
        if pg:
            print(f"    pledges/s / pgbench tps: spread {r['spread_vs_pgbench']}, "
                  f"peak {r['peak_vs_pgbench']}  (target >= 1.0, floor 0.5)")
    bare = results.get("bare")
    if bare:
        print(f"bare endpoint (HTTP, one INSERT, no checks): {bare['pledges_per_s']:.0f}/s "
              f"(p50 {bare['p50_ms']} ms, p99 {bare['p99_ms']} ms)"
              + (f"; / pgbench tps {bare['vs_pgbench']}" if "vs_pgbench" in bare else ""))
        for label, r in results["servers"].items():
            print(f"    serve --workers {label[1:]} spread / bare: {r['spread_vs_bare']}")
    v = results["verify"]
    print(f"verify: reconcile {'ok' if v['reconcile_ok'] else 'FAILED'}, "
          f"pledge rows {v['pledge_rows']} vs 201s {v['created_201']} + seeded "
          f"{v['seeded_backlog']}: "
          f"{'match' if v['match'] else 'MISMATCH'}; answers other than 201: {v['non_201']}")


def parse_args(argv: list[str] | None = None, description: str | None = None
               ) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="serve --workers values to measure, one server each (default 1 2)")
    p.add_argument("--concurrency", type=int, default=128,
                   help="connections of the closed-loop phases (default 128: enough pledges "
                        "in flight for a server's batches to fill; bench/README.md has the "
                        "sweep)")
    p.add_argument("--fans", type=int, default=2000)
    p.add_argument("--streamers", type=int, default=20)
    p.add_argument("--missions", type=int, default=200, help="missions for the spread phase")
    p.add_argument("--requests", type=int, default=20_000, help="cap per closed-loop phase")
    p.add_argument("--seconds", type=float, default=12, help="cap per closed-loop phase")
    p.add_argument("--warmup", type=int, default=400)
    p.add_argument("--paced-seconds", type=float, default=8)
    p.add_argument("--hot-backlog", type=int, default=100_000,
                   help="earlier pledges on the mission of phase (d); 0 skips it")
    p.add_argument("--pgbench-seconds", type=int, default=20, help="0 skips pgbench")
    p.add_argument("--pgbench-scale", type=int, default=8)
    p.add_argument("--pgbench-clients", type=int, default=8,
                   help="pgbench -c (default 8, its best on 2 vCPUs: bench/README.md)")
    p.add_argument("--no-idempotency-key", action="store_true")
    p.add_argument("--client", choices=["httpx", "raw"], default="raw",
                   help="load generator: a lean asyncio HTTP/1.1 client (default), which "
                        "leaves most of a small machine to the server, or httpx.AsyncClient, "
                        "which costs more CPU per request than the server does")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                   help="the benchmark's own event loop (uvloop when installed)")
    p.add_argument("--profile", metavar="DIR", help="add a py-spy sampled phase per server")
    p.add_argument("--profile-seconds", type=float, default=10)
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                   help="a setting of the server under test, e.g. PLEDGE_BATCH_MAX=16 "
                        "(repeatable)")
    p.add_argument("--no-bare", dest="bare", action="store_false",
                   help="skip the bare endpoint (bench/bare_pledge_app.py: HTTP and one INSERT)")
    p.add_argument("--short", action="store_true",
                   help="one server, 2-second phases, small seed and pgbench (about 30 s)")
    args = p.parse_args(argv)
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq or not name:
            p.error(f"--set wants NAME=VALUE, got {item!r}")
        SERVER_SETTINGS[name.removeprefix("MISSIONLINK_")] = value
    if args.short:
        args.workers, args.fans, args.streamers, args.missions = [1], 200, 4, 20
        args.requests, args.seconds, args.warmup, args.paced_seconds = 2000, 2.0, 50, 2.0
        args.hot_backlog, args.pgbench_seconds, args.pgbench_scale = 2000, 3, 1
    return args


def main(argv: list[str] | None = None, description: str | None = None) -> int:
    args = parse_args(argv, description)
    admin = admin_url()
    prefix = f"ml_bench_pledges_{os.getpid()}_{secrets.token_hex(3)}"
    state = State(admin_url=admin, prefix=prefix,
                  tmp=Path(tempfile.mkdtemp(prefix="ml-bench-pledges-")))

    ok = False
    with sigterm_unwinds():
        try:
            ok = _run(state, args)
        finally:
            stop_server(state)
            asyncio.run(drop_databases(state.admin_url, state.databases))
            shutil.rmtree(state.tmp, ignore_errors=True)
            say(f"cleaned up (databases dropped: {prefix}_*; server stopped); "
                f"total {time.perf_counter() - T0:.0f}s")
    return 0 if ok else 1


def _run(state: State, args: argparse.Namespace) -> bool:
    """The run on this process's event loop (uvloop when asked and installed); True when
    the ledger reconciles, the pledge rows match the 201s and nothing else was answered."""
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is not None:
        import uvloop

        results = uvloop.run(bench(state, args))
    else:
        results = asyncio.run(bench(state, args))
    print_summary(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    v = results["verify"]
    return bool(v["reconcile_ok"] and v["match"] and not v["non_201"])
