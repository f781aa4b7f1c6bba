"""Fixtures for the infrastructure tests.

Tests that need AWS CDK skip themselves where it is not installed (the product's own
venv); ``deploy/aws/check.sh`` runs them all from its tool venv.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AWS_DIR = ROOT / "deploy" / "aws"
if str(AWS_DIR) not in sys.path:
    sys.path.insert(0, str(AWS_DIR))

ENVIRONMENTS = ("dev", "staging", "prod")
# Any immutable reference will do for synthesis; release.yml passes the real git SHA.
IMAGE_TAG = "0123456789abcdef0123456789abcdef01234567"


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthesized cloud assembly: check.sh's (MISSIONLINK_CDK_OUT) or a fresh one."""
    pytest.importorskip("aws_cdk")
    given = os.environ.get("MISSIONLINK_CDK_OUT")
    if given and all((Path(given) / f"assembly-{env}").is_dir() for env in ENVIRONMENTS):
        return Path(given)
    from missionlink_infra.stage import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, _ = build_app(image_tag=IMAGE_TAG, outdir=str(outdir))
    app.synth()
    return outdir


@pytest.fixture(scope="session")
def assemblies(cdk_out: Path) -> dict[str, Any]:
    from missionlink_infra.guards import Assembly

    return {env: Assembly.from_directory(cdk_out / f"assembly-{env}", env) for env in ENVIRONMENTS}


@pytest.fixture
def broken(assemblies: dict[str, Any]) -> Callable[[str], Any]:
    """A deep copy of one environment's templates, free to be broken by a test."""
    from missionlink_infra.guards import Assembly

    def copy_of(env: str = "dev") -> Any:
        return Assembly(copy.deepcopy(assemblies[env].templates), f"broken-{env}")

    return copy_of


@pytest.fixture
def synth_stack() -> Callable[[Callable[[Any], None]], Any]:
    """Synthesize a small stand-alone stack that a test builds (a deliberately broken one)."""
    pytest.importorskip("aws_cdk")
    from aws_cdk import App, Environment, Stack
    from missionlink_infra.guards import Assembly

    def build(body: Callable[[Any], None]) -> Any:
        app = App(
            context={
                "availability-zones:account=123456789012:region=ap-northeast-2": [
                    "ap-northeast-2a",
                    "ap-northeast-2c",
                ],
            }
        )
        stack = Stack(
            app, "Broken", env=Environment(account="123456789012", region="ap-northeast-2")
        )
        body(stack)
        template = app.synth().get_stack_by_name("Broken").template
        return Assembly.single(template, "broken")

    return build
