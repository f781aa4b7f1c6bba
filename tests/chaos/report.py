"""Write docs/reliability.md from the JSON lines ``make chaos`` collects (one per scenario
and seed): ``python -m tests.chaos.report <results.jsonl> [docs/reliability.md] [seconds]``.

Only the scenarios in the JSON lines are measured anew: the rows of every other scenario
are kept from the file being replaced, each with the seconds of load and the commit it was
measured with, so running a few scenarios (``-k``) updates just their rows."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


TABLE = ("| scenario | seeds | load per run | operations | acknowledged | refused "
         "| unknown, then retried | sends | faults injected | violations | commit |")
PHASE_TABLE = ("| scenario | kills | killed requests, emails or events | the killed send got "
               "| in the end | in the end, when no other send was lost | violations |")


def _row(name: str, runs: list[dict[str, Any]], seconds: str, commit: str) -> str:
    ops = sum(r["operations"] for r in runs)
    ok = sum(r["outcomes"].get("ok", 0) for r in runs)
    fail = sum(r["outcomes"].get("fail", 0) for r in runs)
    unknown = sum(r.get("unknown_then_retried", 0) for r in runs)
    sends = sum(r["sends"] for r in runs)
    faults = sum(r["faults"] for r in runs)
    violations = sum(r["violations"] for r in runs)
    return (f"| {name} | {len(runs)} | {seconds} s | {ops} | {ok} | {fail} | {unknown} "
            f"| {sends} | {faults} | **{violations}** | `{commit}` |")


def _counts(runs: list[dict[str, Any]], field: str) -> str:
    total: dict[str, int] = defaultdict(int)
    for r in runs:
        for k, v in r["phase_notes"].get(field, {}).items():
            total[k] += v
    return ", ".join(f"{k}: {v}" for k, v in sorted(total.items(), key=lambda kv: -kv[1])
                     ) or "not recorded"


def _phase_row(name: str, runs: list[dict[str, Any]]) -> str:
    kills = sum(r["phase_notes"].get("kills", 0) for r in runs)
    violations = sum(r["violations"] for r in runs)
    phase = runs[0]["phase"]
    if phase == "email-sent":
        again = sum(r["phase_notes"].get("emails_sent_again", 0) for r in runs)
        return (f"| {name} | {kills} | {kills} emails | 250 at the SMTP server, job not "
                f"marked | sent again under the same Message-ID: {again} | | **{violations}** |")
    if phase == "event-published":
        again = sum(r["phase_notes"].get("events_published_again", 0) for r in runs)
        return (f"| {name} | {kills} | {kills} events | published, event not marked "
                f"| published again as the same event: {again} | | **{violations}** |")
    return (f"| {name} | {kills} | {_counts(runs, 'killed_requests')} "
            f"| {_counts(runs, 'killed_send_answers')} | {_counts(runs, 'final_answers')} "
            f"| {_counts(runs, 'final_answers_killed_once')} | **{violations}** |")


def kept_rows(old: str) -> tuple[dict[str, str], dict[str, str]]:
    """The scenario rows of an earlier report, by scenario: the main table's (in the
    current columns) and the phase table's."""
    main: dict[str, str] = {}
    phases: dict[str, str] = {}
    measured = re.search(r"commit `([^`]+)`, [^,]+, ([\d.?]+) s of load per run", old)
    table = ""
    for line in old.splitlines():
        if line.startswith("| scenario"):
            table = line
            continue
        if not line.startswith("| F"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if table == PHASE_TABLE:
            phases[cells[0]] = line
        elif table == TABLE:
            main[cells[0]] = line
        elif measured and len(cells) == 9:  # the first layout: one load and commit for all
            cells[2:2] = [f"{measured.group(2)} s"]
            cells.append(f"`{measured.group(1)}`")
            main[cells[0]] = "| " + " | ".join(cells) + " |"
    return main, phases


def render(rows: list[dict[str, Any]], *, seconds: str, commit: str,
           old: str = "") -> str:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by[row["scenario"]].append(row)
    main, phases = kept_rows(old)
    for name, runs in by.items():
        main[name] = _row(name, runs, seconds, commit)
        if "phase" in runs[0]:
            phases[name] = _phase_row(name, runs)
    lines = [
        "# Reliability: faults against the multi-process topology",
        "",
        "Written by `make chaos` (`tests/chaos/`; `make test` runs one seed of four of them, picked by the commit).",
        "Each scenario starts two API processes behind nginx and two workers",
        "(`deploy/local/cluster.py`) on a PostgreSQL and a Redis of its own, drives a seeded",
        "load of sign-ups, top-ups, proposals, pledges, bets, accepts, rejects, cancels,",
        "results and board posts for the stated seconds while injecting its fault, sends every",
        "operation whose outcome was unknown again with its Idempotency-Key, ends every",
        "mission, waits for settlement, and checks the history against the ledger",
        "(`tests/chaos/harness.py`: each acknowledged effect exactly once, each refused one",
        "never, each unknown one at most once; `reconcile`; every mission settled; the outbox",
        "drained; each result email at a real SMTP server by Message-ID, at least once, every",
        "copy of one Message-ID saying the same; the journal unchanged in the past).",
        "",
        f"Last run on {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}; each row names "
        "the seconds of load per run and the commit it was measured at (a run of some "
        "scenarios keeps the others' rows).",
        "",
        TABLE,
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [main[name] for name in sorted(main)]
    total = sum(int(re.search(r"\*\*(\d+)\*\*", row).group(1))  # type: ignore[union-attr]
                for row in main.values())
    lines += ["", f"Violations in all: **{total}**."]
    if phases:
        lines += [
            "",
            "## Kills at named phases",
            "",
            "The `F1-kill-api-<phase>` and `F2-kill-worker-<phase>` scenarios kill a process",
            "exactly at one phase (`tests/chaos/inject/sitecustomize.py`, on the processes'",
            "`PYTHONPATH`): `parsed`, a pledge or bet parsed, before its function runs;",
            "`sent`, the pledge batch's statement written to PostgreSQL, its result unread;",
            "`committed`, the pledge or bet committed, before the response; `answered`, the",
            "2xx response handed to the socket (the control); `email-sent`, the SMTP server",
            "accepted an email, before the job is marked sent; `event-published`, an event",
            "published to the broker, before it is marked processed. The scenario re-arms the",
            "phase after each kill and fails if it was never reached. Besides the checks",
            "above, each killed request must have got no answer from the send that was",
            "killed (but at `answered`), and an answer in the end; one killed at `committed`",
            "must be answered with the stored response (`Idempotent-Replayed`); a killed",
            "email must reach the SMTP server again under its Message-ID, and a killed event",
            "be published again as the same event. Below, `+replayed` marks a stored",
            "response, and a kill at `sent` kills every pledge of its batch. A kill also",
            "takes down every other request in flight on that process, some of them already",
            "committed, so a request killed at `parsed` may be lost again on its resend and",
            "then answered by a replay; the last column counts only the killed requests",
            "whose other sends were all answered (for `parsed`, each must be applied by its",
            "resend, never replayed). At `sent`, PostgreSQL may commit the statement of a",
            "client that died (its resend is then a replay) or, when the connection's reset",
            "reaches it first, apply none of it (the resend is then answered on its own, a",
            "201 or a refusal on the state of that moment); the checks hold either way.",
            "",
            PHASE_TABLE,
            "|---|---|---|---|---|---|---|",
        ]
        lines += [phases[name] for name in sorted(phases)]
    lines += ["",
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
    old = target.read_text() if target.exists() else ""
    target.write_text(render(rows, seconds=seconds, commit=commit, old=old))
    print(f"wrote {target} from {len(rows)} runs")
    return 1 if any(r["violations"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
