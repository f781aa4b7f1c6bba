"""The role release.yml assumes through GitHub OIDC, and the facts it needs to deploy."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from missionlink_infra.compute import AppStack
from missionlink_infra.config import APP_NAME, ENVIRONMENTS, EnvConfig
from missionlink_infra.delivery import DeliveryStack, github_principal
from missionlink_infra.edge import EdgeStack
from missionlink_infra.network import NetworkStack
from missionlink_infra.suppressions import skip_nag_wildcards

# Actions AWS does not scope to a resource; everything else names its resources (P17).
UNSCOPED_ACTIONS = [
    "ecr:GetAuthorizationToken",
    "ecs:RegisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
]


class ReleaseStack(Stack):
    """Least-privilege release role: push/copy the image, migrate, blue/green, assets."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: EnvConfig,
        delivery: DeliveryStack,
        network: NetworkStack,
        app: AppStack,
        edge: EdgeStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        self.config = config
        facts = {
            "cluster": app.cluster.cluster_name,
            "api_service": app.api_service.service_name,
            "worker_service": app.worker_service.service_name,
            "families": {
                "api": app.tasks.api.family,
                "worker": app.tasks.worker.family,
                "migrate": app.tasks.migrate.family,
            },
            "subnets": network.vpc.select_subnets(subnet_group_name="app").subnet_ids,
            "security_group": network.app_security_group.security_group_id,
            "codedeploy_application": app.deployment_group.application.application_name,
            "codedeploy_group": app.deployment_group.deployment_group_name,
            "static_bucket": edge.static_bucket.bucket_name,
            "distribution": edge.distribution.distribution_id,
            "migrate_log_group": f"/{config.prefix}/migrate",
        }
        self.parameter = ssm.StringParameter(
            self,
            "ReleaseFacts",
            parameter_name=f"/{APP_NAME}/{config.name}/release",
            description="Names release.yml needs to deploy this environment",
            string_value=Stack.of(self).to_json_string(facts),
        )
        self.role = iam.Role(
            self,
            "GitHubRelease",
            role_name=f"{config.prefix}-github-release",
            description="GitHub Actions release.yml for this environment (OIDC, no keys: P7)",
            assumed_by=github_principal(config, delivery.github.oidc_provider_arn),
            max_session_duration=Duration.hours(1),
        )
        self._grant(app, edge, delivery)

    def _grant(self, app: AppStack, edge: EdgeStack, delivery: DeliveryStack) -> None:
        cfg = self.config
        arn = f"{cfg.region}:{cfg.account}"
        add = self.role.add_to_policy
        add(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"], resources=[self.parameter.parameter_arn]
            )
        )
        add(iam.PolicyStatement(actions=UNSCOPED_ACTIONS, resources=["*"]))
        add(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:CompleteLayerUpload",
                    "ecr:DescribeImages",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:InitiateLayerUpload",
                    "ecr:PutImage",
                    "ecr:UploadLayerPart",
                ],
                resources=[delivery.repository.repository_arn],
            )
        )
        dev = ENVIRONMENTS["dev"]
        if cfg.name != "dev" and dev.account != cfg.account:
            add(
                iam.PolicyStatement(
                    actions=[
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:BatchGetImage",
                        "ecr:DescribeImages",
                        "ecr:GetDownloadUrlForLayer",
                    ],
                    resources=[f"arn:aws:ecr:{dev.region}:{dev.account}:repository/{APP_NAME}"],
                )
            )
        migrate_revisions = f"arn:aws:ecs:{arn}:task-definition/{cfg.prefix}-migrate:*"
        add(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[migrate_revisions],
                conditions={
                    "ArnEquals": {"ecs:cluster": f"arn:aws:ecs:{arn}:cluster/{cfg.prefix}"}
                },
            )
        )
        tasks_arn = f"arn:aws:ecs:{arn}:task/{cfg.prefix}/*"
        add(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks", "ecs:TagResource"], resources=[tasks_arn]
            )
        )
        add(
            iam.PolicyStatement(
                actions=["ecs:DescribeServices", "ecs:UpdateService"],
                resources=[
                    f"arn:aws:ecs:{arn}:service/{cfg.prefix}/{cfg.prefix}-{name}"
                    for name in ("api", "worker")
                ],
            )
        )
        add(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[
                    f"arn:aws:iam::{cfg.account}:role/{cfg.prefix}-{name}"
                    for name in ("task-execution", "api-task", "worker-task", "migrate-task")
                ],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        group = f"arn:aws:codedeploy:{arn}:deploymentgroup:{cfg.prefix}-api/{cfg.prefix}-api"
        add(
            iam.PolicyStatement(
                actions=[
                    "codedeploy:CreateDeployment",
                    "codedeploy:GetDeployment",
                    "codedeploy:GetDeploymentGroup",
                    "codedeploy:StopDeployment",
                ],
                resources=[group],
            )
        )
        add(
            iam.PolicyStatement(
                actions=[
                    "codedeploy:GetApplicationRevision",
                    "codedeploy:RegisterApplicationRevision",
                ],
                resources=[f"arn:aws:codedeploy:{arn}:application:{cfg.prefix}-api"],
            )
        )
        config_name = app.deployment_group.deployment_config.deployment_config_name
        add(
            iam.PolicyStatement(
                actions=["codedeploy:GetDeploymentConfig"],
                resources=[f"arn:aws:codedeploy:{arn}:deploymentconfig:{config_name}"],
            )
        )
        bucket = f"arn:aws:s3:::{cfg.static_bucket_name}"
        add(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket]))
        add(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[f"{bucket}/*"],
            )
        )
        add(
            iam.PolicyStatement(
                actions=["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"],
                resources=[
                    self.format_arn(
                        service="cloudfront",
                        region="",
                        resource="distribution",
                        resource_name=edge.distribution.distribution_id,
                    )
                ],
            )
        )
        migrate_streams = f"arn:aws:logs:{arn}:log-group:/{cfg.prefix}/migrate:log-stream:*"
        add(iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[migrate_streams]))
        skip_nag_wildcards(
            self.role,
            ["*", migrate_revisions, tasks_arn, f"{bucket}/*", migrate_streams],
            "Resource '*' only for actions AWS does not scope (UNSCOPED_ACTIONS); the other "
            "wildcards are the revisions of one task family, the tasks of one cluster, the "
            "objects of the static bucket and the streams of the migrate log group.",
        )
