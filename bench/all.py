"""Run every benchmark under bench/, one after another (``make bench``, ``make bench-short``).

    MISSIONLINK_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1/postgres \\
    MISSIONLINK_BENCH_REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/all.py [--short] [--only settlement pledges ...]

Each script measures against its own limit taken in the same run (pgbench for pledges,
a bare Starlette app for reads) and cleans up what it created. One at a time, because they
would otherwise measure each other. ``--short`` passes ``--short`` to each: the whole of
every script in seconds, which CI runs to keep them working.

Exit status: 0 when every script ran, 1 when at least one run broke (its own exit status
says why; a slow figure never counts), 2 when the PostgreSQL or Redis URL is not set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from benchkit.run import sigterm_unwinds  # type: ignore[import-not-found]

HERE = Path(__file__).resolve().parent
#: cheapest first, so a broken setup shows within seconds
SCRIPTS = ["settlement", "emails", "pledges", "reads", "live", "soak"]
NEEDED = {
    "MISSIONLINK_BENCH_POSTGRES_URL": "an admin URL of a PostgreSQL server the benchmarks may "
    "create and drop their own databases on, e.g. postgresql://postgres@127.0.0.1:5432/postgres",
    "MISSIONLINK_BENCH_REDIS_URL": "a Redis database the live-stream benchmark may use as its "
    "broker, e.g. redis://127.0.0.1:6379/14",
}


def run_one(name: str, short: bool) -> tuple[int, float]:
    argv = [sys.executable, str(HERE / f"{name}.py"), *(["--short"] if short else [])]
    print(f"\n=== bench/{name}.py{' --short' if short else ''}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=HERE.parent)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # The script cleans up its databases and servers on SIGTERM; wait for it to finish.
        proc.terminate()
        proc.wait(timeout=120)
        raise
    return code, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="every script in its short mode")
    parser.add_argument("--only", nargs="+", choices=SCRIPTS, default=SCRIPTS, metavar="NAME",
                        help=f"run only these, in this order ({', '.join(SCRIPTS)})")
    args = parser.parse_args()
    missing = [name for name in NEEDED if not os.environ.get(name)]
    if missing:
        for name in missing:
            print(f"bench: {name} is not set: {NEEDED[name]}", file=sys.stderr)
        return 2
    outcomes: list[tuple[str, int, float]] = []
    try:
        with sigterm_unwinds():
            for name in args.only:
                code, seconds = run_one(name, args.short)
                outcomes.append((name, code, seconds))
    except KeyboardInterrupt:
        print("bench: interrupted; the running script cleaned up after itself", file=sys.stderr)
        return 130
    print("\n=== benchmarks", flush=True)
    for name, code, seconds in outcomes:
        print(f"  {name:<11} {'ok' if code == 0 else f'BROKEN (exit {code})':<16} {seconds:6.1f} s")
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
