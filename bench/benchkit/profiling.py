"""py-spy against a server under load: found beside this Python or on the PATH, recording
raw stacks for a fixed time (never counted in the figures)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_py_spy() -> str | None:
    """The py-spy beside this interpreter (the venv's), else the one on the PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record_argv(py_spy: str, pid: int, seconds: float, out: Path, *,
                subprocesses: bool = False) -> list[str]:
    """``py-spy record`` of ``pid`` at 200 Hz for ``seconds``, raw stacks into ``out``,
    without pausing the process."""
    return [py_spy, "record", "--pid", str(pid),
            *(["--subprocesses"] if subprocesses else []), "--nonblocking",
            "--rate", "200", "--duration", str(int(seconds)), "--format", "raw",
            "-o", str(out)]
