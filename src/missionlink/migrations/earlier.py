"""An earlier core migration's module, read from its own file.

A migration that rewrites a function an earlier one installed (``missionlink_place_pledges``)
starts from that migration's SQL instead of a copy of it, and a test reads each revision's
SQL the same way. The files are frozen once released, so what is read is what ran.
"""

from __future__ import annotations

from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType

VERSIONS = Path(__file__).resolve().parent / "core" / "versions"


def core_revision(name: str) -> ModuleType:
    """The module of ``core/versions/<name>.py`` (``"0016_chargebacks"``), loaded anew."""
    spec = spec_from_file_location(f"missionlink_migration_{name}", VERSIONS / f"{name}.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(VERSIONS / f"{name}.py")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
