"""Memory soak: drive a real `missionlink serve` with mixed traffic and sample its RSS.

    .venv/bin/python bench/soak.py [--short] [--seconds 600] [--concurrency 8]

Runs the embedded default (SQLite, worker inside the API process) in a temporary
DATA_DIR, signs fans and a streamer up through the API, then loops until the time is up:
top-ups, mission proposals, pledges, accept/result, reads of missions, backers, wallet and
journal lines. Every 5 s it samples the server's resident memory (VmRSS from /proc) and at
the end prints the samples, the peak, and the growth between the first and last third.
``--short`` soaks for 20 s so CI keeps the script working. Exits 1 when the server answers
any request with a 5xx or nothing got through, never because of its memory or speed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import (  # type: ignore[import-not-found]
    Broken,
    exit_code,
    free_port,
    rss_mib,
    stop_group,
)

PASSWORD = "correct horse battery staple"
KEYS = itertools.count()  # Idempotency-Keys unique across all the load tasks
FIRST_ERRORS: list[str] = []


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
        # Only the embedded default is soaked: none of the caller's MISSIONLINK_* settings.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONLINK_")}
        env.update({"MISSIONLINK_DATA_DIR": data,
                    "MISSIONLINK_RATE_LIMIT_SIGNUPS_PER_MINUTE": "0",
                    "MISSIONLINK_RATE_LIMIT_PLEDGES_PER_MINUTE": "0",
                    "MISSIONLINK_PROPOSAL_COOLDOWN_SECONDS": "0"})
        log_path = Path(data) / "serve.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(  # noqa: ASYNC220 - started once, before the load
                [sys.executable, "-m", "missionlink.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                for _ in range(300):
                    if server.poll() is not None:
                        raise Broken(f"the server exited:\n{log_path.read_text()[-3000:]}")
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)
                else:
                    raise Broken(f"the server did not start:\n{log_path.read_text()[-3000:]}")
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
                while time.monotonic() < until:
                    samples.append((time.monotonic() - started, rss_mib(server.pid)))
                    print(f"t={samples[-1][0]:6.0f}s  rss={samples[-1][1]:6.1f} MiB  "
                          f"loops={counts.get('loops', 0)}", flush=True)
                    await asyncio.sleep(5)
                await asyncio.gather(*load)
                samples.append((time.monotonic() - started, rss_mib(server.pid)))
            third = max(1, len(samples) // 3)
            first = statistics.mean(r for _, r in samples[:third])
            last = statistics.mean(r for _, r in samples[-third:])
            print(f"requests by status: {dict(sorted(counts.items()))}")
            print(f"peak RSS {max(r for _, r in samples):.1f} MiB; mean of first third "
                  f"{first:.1f} MiB, last third {last:.1f} MiB (growth {last - first:+.1f} MiB)")
            errors = sum(n for k, n in counts.items() if k.isdigit() and int(k) >= 500)
            if errors:
                raise Broken(f"{errors} requests answered with a 5xx; server log:\n"
                             f"{log_path.read_text(errors='replace')[-3000:]}")
            if not counts.get("loops"):
                raise Broken("not one loop of traffic completed")
        finally:
            stop_group(server)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true", help="20 s, 4 loops")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if args.short:
        args.seconds, args.concurrency = 20, 4
    return exit_code(lambda: asyncio.run(bench(args)))


if __name__ == "__main__":
    raise SystemExit(main())
