"""Typed per-environment settings: every size, count and retention lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EnvName = Literal["dev", "staging", "prod"]

APP_NAME = "missionlink"
API_PORT = 8000
WORKER_METRICS_PORT = 9100
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
# The app's gauge, scraped from the worker and published as a CloudWatch metric.
OUTBOX_METRIC = "missionlink_outbox_oldest_age_seconds"
METRICS_NAMESPACE = "MissionLink"


@dataclass(frozen=True)
class TaskSize:
    """Fargate task size and service counts."""

    cpu: int
    memory_mib: int
    min_count: int = 1
    max_count: int = 1


@dataclass(frozen=True)
class DatabaseSize:
    """Aurora PostgreSQL Serverless v2 capacity and protection."""

    min_acu: float
    max_acu: float
    readers: int
    backup_retention_days: int
    deletion_protection: bool


@dataclass(frozen=True)
class CacheSize:
    """ElastiCache (Redis OSS) replication group used as the message broker."""

    node_type: str
    replicas: int


@dataclass(frozen=True)
class EnvConfig:
    """Everything that differs between dev, staging and prod."""

    name: EnvName
    account: str
    region: str
    vpc_cidr: str
    nat_gateways: int
    interface_endpoints: bool
    api: TaskSize
    worker: TaskSize
    migrate: TaskSize
    core_db: DatabaseSize
    identity_db: DatabaseSize
    cache: CacheSize
    log_retention_days: int
    domain_name: str
    origin_domain_name: str
    mail_domain: str
    payment_provider: str
    cloudfront_prefix_list_id: str
    github_repository: str = "missionlink/missionlink"
    # Alarm thresholds (also used by CodeDeploy for automatic rollback).
    alarm_5xx_ratio_percent: float = 2.0
    alarm_p99_latency_seconds: float = 1.0
    alarm_cpu_percent: float = 85.0
    alarm_outbox_age_seconds: float = 60.0
    waf_rate_limit_per_5min: int = 2000
    extra_cors_origins: tuple[str, ...] = field(default_factory=tuple)

    @property
    def prefix(self) -> str:
        return f"{APP_NAME}-{self.name}"

    @property
    def static_bucket_name(self) -> str:
        return f"{self.prefix}-static-{self.account}"

    @property
    def public_url(self) -> str:
        return f"https://{self.domain_name}"

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return (self.public_url, *self.extra_cors_origins)

    @property
    def is_prod(self) -> bool:
        return self.name == "prod"


# The Seoul region serves the Korean audience; see docs/global-traffic.md for far regions.
REGION = "ap-northeast-2"
# CloudFront's origin-facing managed prefix list in REGION; check it with
# `aws ec2 describe-managed-prefix-lists --filters
#  Name=prefix-list-name,Values=com.amazonaws.global.cloudfront.origin-facing`.
CLOUDFRONT_PREFIX_LIST = "pl-22a6434b"

ENVIRONMENTS: dict[str, EnvConfig] = {
    "dev": EnvConfig(
        name="dev",
        account="111111111111",
        region=REGION,
        vpc_cidr="10.10.0.0/16",
        nat_gateways=1,
        interface_endpoints=False,
        api=TaskSize(cpu=512, memory_mib=1024, min_count=1, max_count=2),
        worker=TaskSize(cpu=512, memory_mib=1024, min_count=1, max_count=2),
        migrate=TaskSize(cpu=256, memory_mib=512),
        core_db=DatabaseSize(0.5, 4, readers=0, backup_retention_days=1, deletion_protection=False),
        identity_db=DatabaseSize(
            0.5, 2, readers=0, backup_retention_days=1, deletion_protection=False
        ),
        cache=CacheSize(node_type="cache.t4g.micro", replicas=0),
        log_retention_days=14,
        domain_name="dev.missionlink.example",
        origin_domain_name="origin.dev.missionlink.example",
        mail_domain="dev.missionlink.example",
        payment_provider="sandbox",
        cloudfront_prefix_list_id=CLOUDFRONT_PREFIX_LIST,
        extra_cors_origins=("http://localhost:8000",),
    ),
    "staging": EnvConfig(
        name="staging",
        account="222222222222",
        region=REGION,
        vpc_cidr="10.20.0.0/16",
        nat_gateways=1,
        interface_endpoints=True,
        api=TaskSize(cpu=1024, memory_mib=2048, min_count=2, max_count=4),
        worker=TaskSize(cpu=1024, memory_mib=2048, min_count=1, max_count=4),
        migrate=TaskSize(cpu=512, memory_mib=1024),
        core_db=DatabaseSize(0.5, 8, readers=0, backup_retention_days=7, deletion_protection=True),
        identity_db=DatabaseSize(
            0.5, 4, readers=0, backup_retention_days=7, deletion_protection=True
        ),
        cache=CacheSize(node_type="cache.t4g.small", replicas=1),
        log_retention_days=30,
        domain_name="staging.missionlink.example",
        origin_domain_name="origin.staging.missionlink.example",
        mail_domain="staging.missionlink.example",
        payment_provider="webhook",
        cloudfront_prefix_list_id=CLOUDFRONT_PREFIX_LIST,
    ),
    "prod": EnvConfig(
        name="prod",
        account="333333333333",
        region=REGION,
        vpc_cidr="10.30.0.0/16",
        nat_gateways=2,
        interface_endpoints=True,
        api=TaskSize(cpu=1024, memory_mib=2048, min_count=3, max_count=20),
        worker=TaskSize(cpu=1024, memory_mib=2048, min_count=2, max_count=10),
        migrate=TaskSize(cpu=512, memory_mib=1024),
        core_db=DatabaseSize(2, 64, readers=1, backup_retention_days=35, deletion_protection=True),
        identity_db=DatabaseSize(
            1, 16, readers=1, backup_retention_days=35, deletion_protection=True
        ),
        cache=CacheSize(node_type="cache.r7g.large", replicas=1),
        log_retention_days=365,
        domain_name="missionlink.example",
        origin_domain_name="origin.missionlink.example",
        mail_domain="missionlink.example",
        payment_provider="webhook",
        cloudfront_prefix_list_id=CLOUDFRONT_PREFIX_LIST,
        alarm_5xx_ratio_percent=1.0,
        alarm_p99_latency_seconds=0.5,
        alarm_outbox_age_seconds=30.0,
    ),
}
