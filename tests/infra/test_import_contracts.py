"""The import contracts of pyproject.toml (the drawing of docs/architecture.md) hold for
the code, and each catches the arrow it forbids: a copy of the package with one import
added must fail ``lint-imports``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_the_code_keeps_its_contracts() -> None:
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("domain/missions.py", "import sqlalchemy", "The domain is pure"),
        ("domain/ledger.py", "from missionlink.services import missions", "Wiring on top"),
        ("services/wallet.py", "from missionlink.api import problems", "Wiring on top"),
        ("adapters/db/sql.py", "from missionlink.services import wallet", "Wiring on top"),
        ("workers/handlers.py", "from missionlink.api import live_hub", "Wiring on top"),
        ("services/board.py", "import fastapi", "know nothing of HTTP"),
        ("api/routers/wallet.py", "from missionlink.adapters.db import core_tables",
         "never the tables"),
        ("api/routers/wallet.py", "from missionlink.bootstrap import Container",
         "never from the wiring"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path: Path, module: str, line: str,
                                      contract: str) -> None:
    shutil.copytree(ROOT / "src" / "missionlink", tmp_path / "missionlink",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "missionlink" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
