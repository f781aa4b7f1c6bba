"""axe-core on a Playwright page: the violations no page may have."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.async_playwright import Axe

#: Impacts that fail a page; "minor" and "moderate" are reported by axe but not held here.
BLOCKING = ("serious", "critical")


async def blocking_violations(page: Any, axe: Axe | None = None) -> list[str]:
    """``id (impact) help [targets]`` of each serious or critical violation on ``page``."""
    results = await (axe or Axe()).run(page)
    return [f"{v['id']} ({v['impact']}) {v['help']} "
            f"{[', '.join(map(str, n['target'])) for n in v['nodes'][:4]]}"
            for v in results.response["violations"] if v["impact"] in BLOCKING]
