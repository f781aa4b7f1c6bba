"""Memory soak: drive a real `missionlink serve` with mixed traffic and sample its RSS.

    .venv/bin/python bench/soak.py [--short] [--seconds 600] [--concurrency 8] [--readers 4]

Runs the embedded default (SQLite, worker inside the API process) in a temporary
DATA_DIR. Before the server starts it seeds quiet channels straight through SQL
(``--quiet-missions`` accepted missions with a few pledges each, spread over 200 channels
that see no writes), so the public reads have more distinct answers than the read model
may hold (``READ_CACHE_MAX_ENTRIES``). Then it signs fans and a streamer up through the
API and loops until the time is up:

- ``--concurrency`` write loops on the busy channel: top-ups, mission proposals, pledges,
  accept/result, reads of missions, backers, wallet and journal lines;
- ``--readers`` anonymous read loops over the quiet channels: a mission, its prediction
  pools and backers, its channel, the channel's missions and the directory, at random, so
  the read model fills to its bound and keeps replacing entries.

Every 5 s it samples the server's resident memory (VmRSS from /proc) and the read model's
size (``missionlink_read_cache_entries`` and ``_body_bytes`` from ``/metrics``); at the
end it prints the peak, the growth between the first and last third, RSS per minute
(min, mean, max: flat or not after warm-up) and when the read model came within 5% of its
entry bound. ``--short`` soaks
for 20 s so CI keeps the script working. Exits 1 when the server answers any request with
a 5xx or nothing got through, never because of its memory or speed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from benchkit.processes import (  # type: ignore[import-not-found]
    clean_env,
    free_port,
    log_tail,
    rss_mib,
    spawn_group,
    stop_group,
    wait_healthy,
)
from benchkit.run import Broken, exit_code  # type: ignore[import-not-found]
from sqlalchemy import insert

from missionlink.adapters.db.core_tables import channels, members, mission_totals, missions
from missionlink.adapters.db.core_tables import pledges as pledge_rows
from missionlink.adapters.db.engine import Database
from missionlink.adapters.db.identity_tables import users
from missionlink.config import Settings
from missionlink.migrations.runner import upgrade_all

PASSWORD = "correct horse battery staple"
KEYS = itertools.count()  # Idempotency-Keys unique across all the load tasks
FIRST_ERRORS: list[str] = []
QUIET_CHANNELS = 200
#: Pledges of each quiet mission (its backers page).
QUIET_PLEDGES = 5


async def seed_quiet(data_dir: Path, n_missions: int) -> dict[int, list[int]]:
    """Channels that see no writes, with accepted missions open for a day; by streamer."""
    settings = Settings(data_dir=data_dir)
    await asyncio.to_thread(upgrade_all, settings)
    now = datetime.now(UTC).replace(microsecond=0)
    identity, core = Database(settings.identity_url), Database(settings.core_url)
    try:
        async with identity.begin() as conn:
            rows = [{"email": f"quiet-{n}@example.com", "email_normalized":
                     f"quiet-{n}@example.com", "password_hash": "x",
                     "display_name": f"조용한 채널 {n}", "role": "streamer" if n else "viewer",
                     "language": "ko", "created_at": now} for n in range(QUIET_CHANNELS + 1)]
            result = await conn.execute(
                insert(users).returning(users.c.id, sort_by_parameter_order=True), rows)
            fan, *streamers = (r.id for r in result)
        async with core.begin() as conn:
            await conn.execute(insert(members), [
                {"user_id": user_id, "display_name": f"quiet {user_id}",
                 "role": "streamer" if user_id != fan else "viewer", "created_at": now}
                for user_id in (fan, *streamers)])
            await conn.execute(insert(channels), [
                {"streamer_id": streamer, "missions_enabled": True, "min_mission_amount": 1000,
                 "accept_timeout_seconds": 3600, "overlay_token": secrets.token_urlsafe(24),
                 "updated_at": now} for streamer in streamers])
            result = await conn.execute(insert(missions).returning(
                missions.c.id, missions.c.streamer_id, sort_by_parameter_order=True), [
                {"streamer_id": streamers[n % len(streamers)], "creator_id": fan,
                 "title": f"조용한 미션 {n}: 매운 라면 먹기", "description": "soak " * 20,
                 "status": "accepted", "fee_bps": settings.platform_fee_bps, "created_at": now,
                 "accept_by": now + timedelta(hours=1), "deadline_at": now + timedelta(days=1),
                 "accepted_at": now} for n in range(n_missions)])
            by_channel: dict[int, list[int]] = {}
            for row in result:
                by_channel.setdefault(int(row.streamer_id), []).append(int(row.id))
            ids = [m for ms in by_channel.values() for m in ms]
            await conn.execute(insert(pledge_rows), [
                {"mission_id": m, "user_id": fan, "amount": 1000, "created_at": now}
                for m in ids for _ in range(QUIET_PLEDGES)])
            await conn.execute(insert(mission_totals), [
                {"mission_id": m, "shard": 0, "amount": 1000 * QUIET_PLEDGES,
                 "pledges": QUIET_PLEDGES} for m in ids])
        return by_channel
    finally:
        await identity.dispose()
        await core.dispose()


async def read_quiet(client: httpx.AsyncClient, until: float, quiet: dict[int, list[int]],
                     counts: dict[str, int]) -> None:
    """Anonymous reads spread over the quiet channels, as a crowd browsing would make."""
    streamers = list(quiet)
    while time.monotonic() < until:
        streamer = random.choice(streamers)
        mission = random.choice(quiet[streamer])
        url = random.choice([
            f"/api/v1/missions/{mission}", f"/api/v1/missions/{mission}/prediction",
            f"/api/v1/missions/{mission}/pledges", f"/api/v1/streamers/{streamer}",
            f"/api/v1/missions?streamer_id={streamer}&limit={random.choice((10, 20, 50))}",
            "/api/v1/streamers?limit=50"])
        r = await client.get(url)
        counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
        counts["reads"] = counts.get("reads", 0) + 1
        if r.status_code >= 500 and len(FIRST_ERRORS) < 3:
            FIRST_ERRORS.append(f"{r.status_code} from GET {url}: {r.text[:300]}")
            print(FIRST_ERRORS[-1], flush=True)


async def read_model_size(client: httpx.AsyncClient) -> tuple[float, float]:
    """Entries and body bytes of the read model, from the server's ``/metrics``."""
    text = (await client.get("/metrics")).text
    found = dict.fromkeys(("entries", "body_bytes"), float("nan"))
    for name in found:
        m = re.search(rf"^missionlink_read_cache_{name} (\S+)$", text, re.M)
        if m:
            found[name] = float(m.group(1))
    return found["entries"], found["body_bytes"]


async def account(client: httpx.AsyncClient, n: int, role: str) -> tuple[int, dict[str, str]]:
    email = f"soak-{role}-{n}@example.com"
    r = await client.post("/api/v1/auth/signup", json={
        "email": email, "password": PASSWORD, "display_name": f"{role} {n}", "role": role})
    r.raise_for_status()
    user_id = int(r.json()["id"])
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    return user_id, {"Authorization": f"Bearer {r.json()['access_token']}"}


async def drive(client: httpx.AsyncClient, until: float, fans: list[dict[str, str]],
                streamer_id: int, streamer: dict[str, str], counts: dict[str, int]) -> None:
    async def call(method: str, url: str, **kwargs: object) -> httpx.Response:
        r = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
        counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
        if r.status_code >= 500 and len(FIRST_ERRORS) < 3:
            FIRST_ERRORS.append(f"{r.status_code} from {method} {url}: {r.text[:300]}")
            print(FIRST_ERRORS[-1], flush=True)
        return r

    while time.monotonic() < until:
        fan = random.choice(fans)
        r = await call("POST", "/api/v1/missions", headers=fan, json={
            "streamer_id": streamer_id, "title": "소크 테스트 미션", "description": "",
            "amount": 1000, "duration_seconds": 600})
        if r.status_code != 201:
            await call("POST", "/api/v1/wallet/topups", headers=fan, json={"amount": 100_000})
            continue
        mission = r.json()["id"]
        for other in random.sample(fans, 3):
            await call("POST", f"/api/v1/missions/{mission}/pledges", headers={
                **other, "Idempotency-Key": f"soak-{next(KEYS)}"}, json={"amount": 1000})
        await call("POST", f"/api/v1/missions/{mission}/accept", headers=streamer)
        outcome = random.choice(["success", "failure"])
        await call("POST", f"/api/v1/missions/{mission}/result", headers=streamer,
                   json={"outcome": outcome})
        await call("GET", f"/api/v1/missions/{mission}")
        await call("GET", f"/api/v1/missions/{mission}/pledges")
        await call("GET", "/api/v1/missions?limit=50")
        await call("GET", "/api/v1/wallet", headers=fan)
        await call("GET", "/api/v1/wallet/transactions?limit=50", headers=fan)
        counts["loops"] = counts.get("loops", 0) + 1


async def bench(args: argparse.Namespace) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        quiet = await seed_quiet(Path(data), args.quiet_missions)
        # Only the embedded default is soaked: none of the caller's MISSIONLINK_* settings.
        env = clean_env()
        env.update({"MISSIONLINK_DATA_DIR": data,
                    "MISSIONLINK_RATE_LIMIT_SIGNUPS_PER_MINUTE": "0",
                    "MISSIONLINK_RATE_LIMIT_PLEDGES_PER_MINUTE": "0",
                    "MISSIONLINK_PROPOSAL_COOLDOWN_SECONDS": "0"})
        if args.read_cache_entries is not None:
            env["MISSIONLINK_READ_CACHE_MAX_ENTRIES"] = str(args.read_cache_entries)
        log_path = Path(data) / "serve.log"
        server = spawn_group(  # started once, before the load
            [args.server_python, "-m", "missionlink.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port)], env, log_path)
        try:
            base = f"http://127.0.0.1:{port}"
            try:
                await wait_healthy(server, f"{base}/healthz", log=log_path)
            except RuntimeError as exc:
                raise Broken(str(exc)) from exc
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                streamer_id, streamer = await account(client, 0, "streamer")
                fans = [(await account(client, n, "viewer"))[1] for n in range(1, 21)]
                for fan in fans:
                    (await client.post("/api/v1/wallet/topups", headers=fan,
                                       json={"amount": 2_000_000})).raise_for_status()
                counts: dict[str, int] = {}
                samples: list[tuple[float, float]] = []
                started = time.monotonic()
                until = started + args.seconds
                load = [asyncio.create_task(drive(client, until, fans, streamer_id, streamer,
                                                  counts)) for _ in range(args.concurrency)]
                load += [asyncio.create_task(read_quiet(client, until, quiet, counts))
                         for _ in range(args.readers)]
                sizes: list[tuple[float, float]] = []
                while time.monotonic() < until:
                    samples.append((time.monotonic() - started, rss_mib(server.pid)))
                    sizes.append(await read_model_size(client))
                    print(f"t={samples[-1][0]:6.0f}s  rss={samples[-1][1]:6.1f} MiB  "
                          f"read model={sizes[-1][0]:6.0f} entries "
                          f"{sizes[-1][1] / 2**20:5.1f} MiB  loops={counts.get('loops', 0)}  "
                          f"reads={counts.get('reads', 0)}", flush=True)
                    await asyncio.sleep(5)
                await asyncio.gather(*load)
                samples.append((time.monotonic() - started, rss_mib(server.pid)))
                sizes.append(await read_model_size(client))
                page = len((await client.get("/api/v1/missions?limit=100")).content)
                one = len((await client.get(f"/api/v1/missions/{quiet[next(iter(quiet))][0]}"
                                            )).content)
            third = max(1, len(samples) // 3)
            first = statistics.mean(r for _, r in samples[:third])
            last = statistics.mean(r for _, r in samples[-third:])
            print(f"requests by status: {dict(sorted(counts.items()))}")
            print(f"peak RSS {max(r for _, r in samples):.1f} MiB; mean of first third "
                  f"{first:.1f} MiB, last third {last:.1f} MiB (growth {last - first:+.1f} MiB)")
            for start in range(0, int(samples[-1][0]) + 1, 60):
                window = [r for t, r in samples if start <= t < start + 60]
                if window:
                    print(f"  {start:4d}-{start + 60:<4d}s  RSS min {min(window):6.1f}  mean "
                          f"{statistics.mean(window):6.1f}  max {max(window):6.1f} MiB")
            full = next((t for (t, _), (n, _) in zip(samples, sizes, strict=True)
                         if args.read_cache_max and n >= 0.95 * args.read_cache_max), None)
            print(f"read model within 5% of its entry bound from "
                  f"{'never' if full is None else f'{full:.0f} s'}")
            print(f"read model: at most {max(n for n, _ in sizes):.0f} entries and "
                  f"{max(b for _, b in sizes) / 2**20:.1f} MiB of bodies, "
                  f"{sizes[-1][0]:.0f} entries at the end; a mission's body is {one:,} "
                  f"bytes, a page of 100 missions {page:,}")
            errors = sum(n for k, n in counts.items() if k.isdigit() and int(k) >= 500)
            if errors:
                raise Broken(f"{errors} requests answered with a 5xx; server log:\n"
                             f"{log_tail(log_path)}")
            if not counts.get("loops"):
                raise Broken("not one loop of traffic completed")
        except httpx.TransportError as exc:
            status = server.poll()
            raise Broken(f"the server stopped answering ({type(exc).__name__}); "
                         f"{'still running' if status is None else f'exit status {status}'}; "
                         f"server log:\n{log_tail(log_path)}") from exc
        finally:
            stop_group(server)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true", help="20 s, 4 write and 2 read loops, 1,000 quiet missions")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8, help="write loops")
    parser.add_argument("--readers", type=int, default=4,
                        help="anonymous read loops over the quiet channels")
    parser.add_argument("--quiet-missions", type=int, default=6000,
                        help="missions seeded in quiet channels (3 cached reads each)")
    parser.add_argument("--server-python", default=sys.executable, metavar="PATH",
                        help="the interpreter that runs the server (default: this one); "
                             "one of a venv holding only the runtime dependencies, as the "
                             "image installs them, measures the process the image runs")
    parser.add_argument("--read-cache-entries", type=int, metavar="N",
                        help="READ_CACHE_MAX_ENTRIES for the server (0: no read model), to "
                        "tell the read model's memory from the rest")
    args = parser.parse_args()
    # The server's bound: the default, as the soak passes none of the caller's settings.
    args.read_cache_max = (Settings.model_fields["read_cache_max_entries"].default
                           if args.read_cache_entries is None else args.read_cache_entries)
    if args.short:
        args.seconds, args.concurrency, args.readers, args.quiet_missions = 20, 4, 2, 1000
    return exit_code(lambda: asyncio.run(bench(args)))


if __name__ == "__main__":
    raise SystemExit(main())
