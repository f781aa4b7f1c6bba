"""Per-account delivery plumbing: the image repository and GitHub's OIDC trust."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from missionlink_infra.config import APP_NAME, ENVIRONMENTS, EnvConfig

GITHUB_OIDC_URL = "token.actions.githubusercontent.com"
CDK_QUALIFIER = "hnb659fds"


def github_principal(
    config: EnvConfig, provider_arn: str, *, environment: str | None = None
) -> iam.WebIdentityPrincipal:
    """Only workflow jobs of this repository bound to the GitHub environment may assume."""
    env = environment or config.name
    return iam.WebIdentityPrincipal(
        provider_arn,
        conditions={
            "StringEquals": {
                f"{GITHUB_OIDC_URL}:aud": "sts.amazonaws.com",
                f"{GITHUB_OIDC_URL}:sub": f"repo:{config.github_repository}:environment:{env}",
            }
        },
    )


def github_provider_arn(stack: Stack) -> str:
    return f"arn:{stack.partition}:iam::{stack.account}:oidc-provider/{GITHUB_OIDC_URL}"


class DeliveryStack(Stack):
    """ECR repository (immutable tags, scan on push), OIDC provider, infra deploy role."""

    def __init__(self, scope: Construct, cid: str, *, config: EnvConfig, **kwargs: object) -> None:
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self.repository = ecr.Repository(
            self,
            "Images",
            repository_name=APP_NAME,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            image_scan_on_push=True,
            encryption=ecr.RepositoryEncryption.KMS,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="drop untagged layers after a week",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(7),
                    rule_priority=1,
                ),
                ecr.LifecycleRule(
                    description="keep the newest 300 tagged images (rollback targets)",
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=300,
                    rule_priority=2,
                ),
            ],
        )
        if config.name == "dev":
            self._let_later_environments_pull()

        self.github = iam.OidcProviderNative(
            self,
            "GitHubOidc",
            url=f"https://{GITHUB_OIDC_URL}",
            client_ids=["sts.amazonaws.com"],
        )
        # `cdk deploy` from GitHub: it may only assume this account's CDK bootstrap roles.
        self.infra_role = iam.Role(
            self,
            "GitHubInfraDeploy",
            role_name=f"{config.prefix}-github-infra",
            description="GitHub Actions: cdk deploy through the CDK bootstrap roles",
            assumed_by=github_principal(config, self.github.oidc_provider_arn),
            max_session_duration=Duration.hours(1),
        )
        self.infra_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole", "sts:TagSession"],
                resources=[
                    f"arn:{self.partition}:iam::{self.account}:role/"
                    f"cdk-{CDK_QUALIFIER}-{kind}-role-{self.account}-{self.region}"
                    for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
                ],
            )
        )

    def _let_later_environments_pull(self) -> None:
        """Staging and prod copy the image tested in dev by digest (release.yml)."""
        later = [
            cfg
            for cfg in ENVIRONMENTS.values()
            if cfg.name != "dev" and cfg.account != self.config.account
        ]
        for cfg in later:
            self.repository.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"PromoteTo{cfg.name.capitalize()}",
                    principals=[iam.AccountPrincipal(cfg.account)],
                    conditions={
                        "ArnEquals": {
                            "aws:PrincipalArn": (
                                f"arn:aws:iam::{cfg.account}:role/{cfg.prefix}-github-release"
                            )
                        }
                    },
                    actions=[
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:DescribeImages",
                    ],
                )
            )
