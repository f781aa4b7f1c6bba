"""Heavy test files are spread through a parallel run, each file's tests kept together."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from tests.conftest import spread_heavy_files


@dataclass
class FakeItem:
    nodeid: str


def test_heavy_files_are_spread_and_files_stay_whole() -> None:
    names = ([f"tests/e2e/test_{i:02}.py" for i in range(12)]
             + ["tests/chaos/test_crash.py", "tests/chaos/test_faults.py",
                "tests/cluster/test_cluster.py"])
    items = [FakeItem(f"{name}::test_{j}") for name in sorted(names) for j in range(2)]
    spread = spread_heavy_files(items)  # type: ignore[arg-type]
    assert sorted(i.nodeid for i in spread) == sorted(i.nodeid for i in items)
    files = [i.nodeid.split("::")[0] for i in spread]
    order = list(dict.fromkeys(files))
    # Each file's tests together and in their order.
    assert files == [name for name in order for _ in range(2)]
    assert [i.nodeid for i in spread if i.nodeid.startswith(order[0])] == [
        f"{order[0]}::test_0", f"{order[0]}::test_1"]
    heavy = [n for n, name in enumerate(order) if not name.startswith("tests/e2e/")]
    assert len(heavy) == 3
    # Never two heavy files side by side: four light files between each.
    assert [b - a for a, b in itertools.pairwise(heavy)] == [5, 5]
    # None first or last: the run neither starts nor ends waiting for one.
    assert heavy[0] > 0 and heavy[-1] < len(order) - 1
