"""One CDK stage per environment, and the app that holds all three."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aws_cdk import App, Environment, Stage, Tags, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from missionlink_infra.compute import AppStack
from missionlink_infra.config import APP_NAME, ENVIRONMENTS, EnvConfig
from missionlink_infra.data import DataStack
from missionlink_infra.delivery import DeliveryStack
from missionlink_infra.edge import EdgeStack
from missionlink_infra.network import NetworkStack
from missionlink_infra.release import ReleaseStack
from missionlink_infra.tasks import check_image_tag

HERE = Path(__file__).resolve().parent.parent
CONTEXT_FILE = HERE / "cdk.context.json"


class MissionLinkStage(Stage):
    """All stacks of one environment, deployed in dependency order."""

    def __init__(self, scope: Construct, config: EnvConfig, *, image_tag: str) -> None:
        env = Environment(account=config.account, region=config.region)
        super().__init__(scope, config.name, env=env)
        prefix = f"MissionLink-{config.name}"

        def name(part: str) -> dict[str, object]:
            return {
                "stack_name": f"{prefix}-{part}",
                "env": env,
                "termination_protection": config.is_prod,
            }

        self.delivery = DeliveryStack(self, "Delivery", config=config, **name("Delivery"))
        self.network = NetworkStack(self, "Network", config=config, **name("Network"))
        self.data = DataStack(self, "Data", config=config, network=self.network, **name("Data"))
        self.app = AppStack(
            self,
            "App",
            config=config,
            network=self.network,
            data=self.data,
            image_tag=image_tag,
            **name("App"),
        )
        self.app.add_stack_dependency(self.delivery)
        self.edge = EdgeStack(
            self, "Edge", config=config, logs_bucket=self.app.logs_bucket, **name("Edge")
        )
        self.release = ReleaseStack(
            self,
            "Release",
            config=config,
            delivery=self.delivery,
            network=self.network,
            app=self.app,
            edge=self.edge,
            **name("Release"),
        )
        Tags.of(self).add("project", APP_NAME)
        Tags.of(self).add("environment", config.name)


def load_context() -> dict[str, object]:
    """Committed lookups (availability zones) so synthesis never calls AWS."""
    return json.loads(CONTEXT_FILE.read_text()) if CONTEXT_FILE.exists() else {}


def build_app(
    *,
    image_tag: str | None = None,
    outdir: str | None = None,
    environments: list[str] | None = None,
    nag: bool = True,
) -> tuple[App, dict[str, MissionLinkStage]]:
    """Build the app with every (or the named) environment's stage."""
    context = load_context()
    app = App(outdir=outdir, context=context)
    tag = (
        image_tag
        or app.node.try_get_context("imageTag")
        or os.environ.get("MISSIONLINK_IMAGE_TAG", "")
    )
    check_image_tag(str(tag))
    stages = {
        name: MissionLinkStage(app, ENVIRONMENTS[name], image_tag=str(tag))
        for name in environments or list(ENVIRONMENTS)
    }
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))  # type: ignore[attr-defined]
    return app, stages
