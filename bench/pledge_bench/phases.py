"""A phase of load and its figures: the closed loop (C connections, each sending when the
last answered) and the open loop (a fixed rate, latency from the scheduled send)."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchkit.cpu import Meter
from benchkit.run import say_elapsed as say
from benchkit.stats import percentile

from pledge_bench.clients import BODY, Client, Requests, make_client


@dataclass
class Phase:
    name: str
    requests: int = 0
    created: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, 201s only
    completions: list[float] = field(default_factory=list)  # perf_counter of each 201
    elapsed: float = 0.0
    target_rate: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.created / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        """The ``p`` percentile of the 201s' latencies, in milliseconds."""
        return percentile(self.latencies, p, math.ceil) * 1000

    def quarter_rates(self, start: float) -> list[float]:
        """201s per second in each quarter of the phase (shows drift, e.g. a growing scan)."""
        if not self.elapsed:
            return []
        q = self.elapsed / 4
        counts = [0, 0, 0, 0]
        for t in self.completions:
            counts[min(3, int((t - start) / q))] += 1
        return [c / q for c in counts]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "created": self.created,
            "statuses": dict(self.statuses),
            "seconds": round(self.elapsed, 2),
            "pledges_per_s": round(self.rate, 1),
            "target_rate": None if self.target_rate is None else round(self.target_rate, 1),
            "p50_ms": round(self.pct(0.50), 1),
            "p99_ms": round(self.pct(0.99), 1),
            "max_ms": round(max(self.latencies) * 1000, 1) if self.latencies else None,
            "cpu_cores": {k: round(v, 2) for k, v in self.cpu.items()},
            "cpu_ms_per_pledge": self.cpu_ms_per_pledge(),
        }

    def cpu_ms_per_pledge(self) -> dict[str, float]:
        """CPU milliseconds per created pledge: steadier than rates on a shared machine."""
        if not self.created:
            return {}
        return {k: round(1000 * self.cpu[k] * self.elapsed / self.created, 2)
                for k in ("server", "postgres", "client") if k in self.cpu}

    def line(self) -> str:
        cpu = " ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in self.cpu.items())
        bad = {k: v for k, v in self.statuses.items() if k != 201}
        target = f" (target {self.target_rate:.0f}/s)" if self.target_rate else ""
        return (
            f"{self.name}: {self.created}/{self.requests} created in {self.elapsed:.1f}s = "
            f"{self.rate:.0f} pledges/s{target}, p50 {self.pct(0.5):.1f} ms, "
            f"p99 {self.pct(0.99):.1f} ms; non-201 {bad or 0}; cores used: {cpu}; "
            f"CPU ms per pledge: {self.cpu_ms_per_pledge()}"
        )


async def _send(client: Client, phase: Phase, path: str, headers: dict[str, str],
                started: float) -> None:
    phase.requests += 1
    status, text = await client.post(path, headers, BODY)
    done = time.perf_counter()
    phase.statuses[status] += 1
    if status == 201:
        phase.created += 1
        phase.latencies.append(done - started)
        phase.completions.append(done)
    elif len(phase.errors) < 5:
        phase.errors.append(f"{status} {text[:300]}")


def show(phase: Phase) -> None:
    say(phase.line())
    for err in phase.errors:
        say(f"  {phase.name} error: {err}")
    if phase.requests and not phase.created:
        raise RuntimeError(f"{phase.name}: no pledge was created; see the errors above")


def settle_collector() -> None:
    """Before a phase: collect, then freeze what is alive (the seed, the tokens, earlier
    phases), so the load generator's own full collections stay short. Unfrozen, one walked
    every object the run had made, a 40-50 ms pause in the middle of a phase that counted
    as the server's latency."""
    gc.collect()
    gc.freeze()


async def closed_loop(name: str, port: int, reqs: Requests, mission_ids: list[int],
                      concurrency: int, max_requests: int, max_seconds: float,
                      meter: Meter) -> tuple[Phase, float]:
    """``concurrency`` connections, each sending its next pledge when the last one answered."""
    phase = Phase(name)
    issued = 0
    client = make_client(reqs.client_kind, port, concurrency)
    try:
        # open the connections first so the phase measures pledges, not TCP handshakes
        await client.warm(concurrency)
        settle_collector()
        before = await meter.start()
        start = time.perf_counter()
        stop_at = start + max_seconds

        async def user_loop() -> None:
            nonlocal issued
            while issued < max_requests and time.perf_counter() < stop_at:
                issued += 1
                path, headers = reqs.next(mission_ids)
                await _send(client, phase, path, headers, time.perf_counter())

        await asyncio.gather(*(user_loop() for _ in range(concurrency)))
        phase.elapsed = time.perf_counter() - start
        phase.cpu = await meter.stop(before, phase.elapsed)
    finally:
        await client.aclose()
    return phase, start


async def open_loop(name: str, port: int, reqs: Requests, mission_ids: list[int], rate: float,
                    seconds: float, meter: Meter) -> Phase:
    """Requests scheduled at a fixed rate; latency counts from the scheduled send time, so
    time spent queued behind a slow response is counted (no coordinated omission)."""
    phase = Phase(name, target_rate=rate)
    n = max(1, int(rate * seconds))
    client = make_client(reqs.client_kind, port, 256)
    try:
        await client.warm(32)
        settle_collector()
        before = await meter.start()
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(n):
            at = start + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            path, headers = reqs.next(mission_ids)
            tasks.append(asyncio.create_task(_send(client, phase, path, headers, at)))
        await asyncio.gather(*tasks)
        phase.elapsed = time.perf_counter() - start
        phase.cpu = await meter.stop(before, phase.elapsed)
    finally:
        await client.aclose()
    return phase
