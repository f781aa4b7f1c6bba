"""A py-spy sampled phase against the server, and a summary of the stacks by category."""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from benchkit.cpu import Meter
from benchkit.profiling import find_py_spy, record_argv
from benchkit.run import say_elapsed as say

from pledge_bench.clients import Requests
from pledge_bench.phases import Phase, closed_loop, show
from pledge_bench.server import State


async def profile_phase(state: State, port: int, reqs: Requests, mission_ids: list[int],
                        concurrency: int, seconds: float, out_dir: Path, label: str,
                        meter: Meter) -> tuple[Phase | None, dict[str, Any]]:
    """A closed-loop spread phase with py-spy sampling the server; a summary of the stacks."""
    pyspy = find_py_spy()
    if pyspy is None or state.server is None:
        say("profile: py-spy not found (.venv/bin/pip install py-spy); skipped")
        return None, {}
    os.makedirs(out_dir, exist_ok=True)
    raw = out_dir / f"pledges-{label}.txt"
    spy = await asyncio.create_subprocess_exec(
        *record_argv(pyspy, state.server.pid, seconds, raw, subprocesses=True),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)
    phase, _ = await closed_loop(f"{label} profiled", port, reqs, mission_ids, concurrency,
                                 10**9, seconds - 1.5, meter)
    await spy.wait()
    show(phase)
    if not raw.exists():
        say("profile: py-spy wrote nothing (ptrace not permitted?)")
        return phase, {}
    summary = summarize_stacks(raw.read_text())
    say(f"profile: {summary['samples']} busy samples (+{summary['idle_samples']} idle) -> {raw}")
    for title, key, n in (("by category", "categories", 20), ("self time", "self", 15),
                          ("inclusive time", "inclusive", 40)):
        print(f"    busy samples {title}:")
        for name, share in summary[key][:n]:
            print(f"      {share:5.1f}%  {name}")
    return phase, summary


IDLE_LEAVES = ("Condition.wait", "Queue.get", "select (selectors", "poll (selectors")

#: (category, substring of any frame on the stack); first match wins, so the order matters.
STACK_CATEGORIES = [
    ("JWT verify (Ed25519 signature per request)", "TokenService.verify"),
    ("threadpool hop for sync dependencies", "run_in_threadpool"),
    ("threadpool hop for sync dependencies", "WorkerThread.run"),
    ("threadpool hop for sync dependencies", "run_sync_in_worker_thread"),
    ("threadpool hop for sync dependencies", "Condition.notify"),
    ("new DB connections (pool overflow churn)", "AsyncAdapt_dbapi_connection.create"),
    ("new DB connections (pool overflow churn)", "connect_utils"),
    ("connection ping at checkout (each one before 243ff89; now after 1 s idle)",
     "_async_ping"),
    ("access log + request log line", "(logging/"),
    ("access log + request log line", "(structlog/"),
]
#: categories for the rest, by the file of the innermost frame
LEAF_CATEGORIES = [
    ("asyncpg driver (protocol, prepare, transaction)", "(asyncpg/"),
    ("SQLAlchemy Core (compile, params, results, pool)", "(sqlalchemy/"),
    ("MissionLink code", "(missionlink/"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(uvicorn/"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(starlette/"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(fastapi/"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(pydantic"),
    ("HTTP stack (uvicorn, starlette, fastapi, pydantic)", "(anyio/"),
    ("metrics (prometheus_client)", "(prometheus_client/"),
    ("event loop (uvloop/asyncio, incl. socket I/O)", "(asyncio/"),
]


def summarize_stacks(text: str) -> dict[str, Any]:
    """Shares of busy samples: by category, by function (self) and by function (inclusive)."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = idle = 0
    for line in text.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        # process labels ('process PID:"command line"', parent first) may hold ';'
        stack = re.sub(r'^(process \d+:".*?"(;|$))+', "", stack)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [re.sub(r"\(/\S*/(site-packages|src|python3\.\d+)/", "(", f) for f in frames]
        frames = [f for f in frames if f and not f.startswith(("process ", "thread "))]
        if not frames or frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        self_time[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count
        joined = ";".join(frames)
        category = next((name for name, needle in STACK_CATEGORIES if needle in joined), None)
        if category is None:
            category = next((name for name, needle in LEAF_CATEGORIES if needle in frames[-1]),
                            "other")
        categories[category] += count

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(40)] if total else []

    return {"samples": total, "idle_samples": idle, "categories": share(categories),
            "self": share(self_time), "inclusive": share(inclusive)}
