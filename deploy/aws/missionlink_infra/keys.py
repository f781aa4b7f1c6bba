"""Customer-managed KMS keys with the service grants their users need."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from missionlink_infra.config import EnvConfig


def platform_key(scope: Construct, cid: str, config: EnvConfig, purpose: str) -> kms.Key:
    """A rotating key for one stack's logs, secrets and topics."""
    stack = Stack.of(scope)
    key = kms.Key(
        scope,
        cid,
        alias=f"alias/{config.prefix}-{purpose}",
        description=f"MissionLink {config.name} {purpose}",
        enable_key_rotation=True,
        rotation_period=Duration.days(365),
        pending_window=Duration.days(30),
        removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
    )
    # Encrypted log groups add CloudWatch Logs' own grant; alarms publishing to an
    # encrypted SNS topic need this one.
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsToSns",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )
    return key


def encrypted_log_group(
    scope: Construct, cid: str, config: EnvConfig, name: str, key: kms.IKey
) -> logs.LogGroup:
    """A KMS-encrypted log group named ``/missionlink-<env>/<name>`` with the env's retention."""
    return logs.LogGroup(
        scope,
        cid,
        log_group_name=f"/{config.prefix}/{name}",
        retention=retention(config.log_retention_days),
        encryption_key=key,
        removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
    )


RETENTION = {
    1: "ONE_DAY",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    90: "THREE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    731: "TWO_YEARS",
    1827: "FIVE_YEARS",
}


def retention(days: int) -> logs.RetentionDays:
    """The RetentionDays member for a number of days (CloudWatch accepts only some)."""
    if days not in RETENTION:
        raise ValueError(f"{days} days is not a retention period this project uses")
    return logs.RetentionDays[RETENTION[days]]
