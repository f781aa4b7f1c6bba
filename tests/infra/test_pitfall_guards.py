"""Every pitfall guard holds on the synthesized templates of dev, staging and prod."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from missionlink_infra.config import ENVIRONMENTS
from missionlink_infra.guards import TEMPLATE_GUARDS
from missionlink_infra.guards.edge import check_cors_preflight


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
@pytest.mark.parametrize("pitfall", list(TEMPLATE_GUARDS))
def test_guard_holds(assemblies: dict[str, Any], env: str, pitfall: str) -> None:
    problems = TEMPLATE_GUARDS[pitfall](assemblies[env])
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_api_allows_exactly_the_environments_origins(assemblies: dict[str, Any], env: str) -> None:
    origins = list(ENVIRONMENTS[env].cors_origins)
    assert check_cors_preflight(assemblies[env], cors_origins=origins) == []


def test_no_manifest_has_missing_context(cdk_out: Any) -> None:
    import json

    for manifest in cdk_out.rglob("manifest.json"):
        missing = json.loads(manifest.read_text()).get("missing")
        assert not missing, f"{manifest} needs lookups (commit them to cdk.context.json): {missing}"


def test_an_uncommitted_lookup_shows_up_as_missing_context(tmp_path: Any) -> None:
    import json

    from aws_cdk import App, Environment, Stack
    from aws_cdk import aws_ec2 as ec2

    app = App(outdir=str(tmp_path))  # no committed context: the AZ lookup cannot resolve
    stack = Stack(app, "Lookup", env=Environment(account="123456789012", region="eu-west-1"))
    ec2.Vpc(stack, "Vpc", max_azs=2)
    app.synth()
    missing = json.loads((tmp_path / "manifest.json").read_text()).get("missing")
    assert missing and missing[0]["provider"] == "availability-zones"
