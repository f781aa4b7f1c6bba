"""Write docs/reliability.md from the JSON lines ``make chaos`` collects (one per scenario
and seed): ``python -m tests.chaos.report <results.jsonl> [docs/reliability.md]``."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def render(rows: list[dict[str, Any]], *, seconds: str, commit: str) -> str:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by[row["scenario"]].append(row)
    lines = [
        "# Reliability: faults against the multi-process topology",
        "",
        "Written by `make chaos` (`tests/chaos/`; the short CI run is one seed of each).",
        "Each scenario starts two API processes behind nginx and two workers",
        "(`deploy/local/cluster.py`) on a PostgreSQL and a Redis of its own, drives a seeded",
        "load of sign-ups, top-ups, proposals, pledges, bets, accepts, rejects, cancels,",
        "results and board posts for the stated seconds while injecting its fault, sends every",
        "operation whose outcome was unknown again with its Idempotency-Key, ends every",
        "mission, waits for settlement, and checks the history against the ledger",
        "(`tests/chaos/harness.py`: each acknowledged effect exactly once, each refused one",
        "never, each unknown one at most once; `reconcile`; every mission settled; the outbox",
        "drained; one result email per recipient at a real SMTP server; the journal unchanged",
        "in the past).",
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d}, commit `{commit}`, {platform.machine()}, "
        f"{seconds} s of load per run.",
        "",
        "| scenario | seeds | operations | acknowledged | refused | unknown, then retried "
        "| sends | faults injected | violations |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    total_violations = 0
    for name in sorted(by):
        runs = by[name]
        ops = sum(r["operations"] for r in runs)
        ok = sum(r["outcomes"].get("ok", 0) for r in runs)
        fail = sum(r["outcomes"].get("fail", 0) for r in runs)
        unknown = sum(r.get("unknown_then_retried", 0) for r in runs)
        sends = sum(r["sends"] for r in runs)
        faults = sum(r["faults"] for r in runs)
        violations = sum(r["violations"] for r in runs)
        total_violations += violations
        lines.append(f"| {name} | {len(runs)} | {ops} | {ok} | {fail} | {unknown} | {sends} "
                     f"| {faults} | **{violations}** |")
    lines += ["", f"Violations in all: **{total_violations}**.", "",
              "The races (F7: one key twice at once, many pledges emptying one wallet, a "
              "result against the deadline, cancel against accept) and the Hypothesis model "
              "of missions, pledges, bets and wallets run in-process on SQLite and "
              "PostgreSQL: `tests/chaos/test_races.py` and `tests/chaos/test_model.py` "
              "(`make model` for at least 10,000 steps)."]
    problems = [(r["scenario"], r["seed"], p) for r in rows for p in r.get("problems", [])]
    if problems:
        lines += ["", "## Violations found", ""]
        lines += [f"- {name} seed {seed}: {p}" for name, seed, p in problems[:50]]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    source = Path(argv[1])
    target = Path(argv[2]) if len(argv) > 2 else ROOT / "docs" / "reliability.md"
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip() or "unknown"
    seconds = argv[3] if len(argv) > 3 else "?"
    target.write_text(render(rows, seconds=seconds, commit=commit))
    print(f"wrote {target} from {len(rows)} runs")
    return 1 if any(r["violations"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
