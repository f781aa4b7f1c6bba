from __future__ import annotations

from pathlib import Path
from types import ModuleType


def load_guards(path: Path, name: str) -> ModuleType:
    """A deploy folder's guards module (deploy/ is not a package), loaded from its file."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
