"""Fargate task definitions for the one image's three commands: serve, worker, migrate."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from missionlink_infra.config import (
    API_PORT,
    HEALTH_PATH,
    METRICS_NAMESPACE,
    OUTBOX_METRIC,
    WORKER_METRICS_PORT,
    EnvConfig,
    TaskSize,
)
from missionlink_infra.data import DataStack
from missionlink_infra.keys import encrypted_log_group
from missionlink_infra.suppressions import skip_nag, skip_nag_wildcards

# Only immutable references reach a task definition (P14): a git SHA, a semver tag, a digest.
IMMUTABLE_TAG = re.compile(r"^(?:[0-9a-f]{40}|v?\d+\.\d+\.\d+(?:-rc\.\d+)?|sha256:[0-9a-f]{64})$")
# The collector that turns the worker's Prometheus gauge into a CloudWatch metric (EMF).
COLLECTOR_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0"

# Valid Fargate CPU units -> memory (MiB) choices (P3).
FARGATE_SIZES: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


def check_fargate_size(size: TaskSize, what: str) -> None:
    """Refuse a CPU/memory pair Fargate cannot place (P3) before anything is synthesized."""
    if size.memory_mib not in FARGATE_SIZES.get(size.cpu, range(0)):
        raise ValueError(
            f"P3: {what} asks for {size.cpu} CPU units with {size.memory_mib} MiB, "
            "which is not a Fargate task size"
        )


def check_image_tag(tag: str) -> str:
    """Refuse empty, ``latest`` or any other movable tag (P14)."""
    if not IMMUTABLE_TAG.match(tag or ""):
        raise ValueError(
            f"P14: image tag {tag!r} is not immutable; pass a git SHA, vX.Y.Z[-rc.N] or "
            "sha256 digest with -c imageTag=... (or MISSIONLINK_IMAGE_TAG)"
        )
    return tag


@dataclass(frozen=True)
class AppTaskDefinitions:
    api: ecs.FargateTaskDefinition
    worker: ecs.FargateTaskDefinition
    migrate: ecs.FargateTaskDefinition
    execution_role: iam.Role
    worker_metrics_log_group: logs.LogGroup


def python_probe(port: int, path: str) -> list[str]:
    """An exec health check that needs nothing but the image's Python."""
    code = (
        "import sys,urllib.request as u;"
        f"sys.exit(0 if u.urlopen('http://127.0.0.1:{port}{path}',timeout=3).status==200 else 1)"
    )
    return ["CMD", "python", "-c", code]


class TaskFactory:
    """Builds the task definitions; names are fixed so the release workflow can find them."""

    def __init__(
        self,
        scope: Construct,
        *,
        config: EnvConfig,
        data: DataStack,
        image: ecs.ContainerImage,
        key: kms.IKey,
        vpc_cidr: str,
    ) -> None:
        self.scope = scope
        self.config = config
        self.data = data
        self.image = image
        self.key = key
        self.vpc_cidr = vpc_cidr
        stack = Stack.of(scope)
        self.execution_role = iam.Role(
            scope,
            "TaskExecutionRole",
            role_name=f"{config.prefix}-task-execution",
            description="ECS agent: pull the image, write logs, read secrets (P5)",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        )
        self.region = stack.region
        skip_nag_wildcards(
            self.execution_role,
            ["*"],
            "ecr:GetAuthorizationToken takes no "
            "resource; pulls, logs and secrets are scoped to named resources.",
        )
        self._secret_refs: dict[str, sm.ISecret] | None = None

    def build(self) -> AppTaskDefinitions:
        cfg = self.config
        for size, what in ((cfg.api, "api"), (cfg.worker, "worker"), (cfg.migrate, "migrate")):
            check_fargate_size(size, what)
        metrics_group = encrypted_log_group(
            self.scope, "WorkerMetricsLogs", cfg, "worker-metrics", self.key
        )
        api = self._task("Api", "api", cfg.api)
        self._app_container(
            api,
            "api",
            ["serve", "--host", "0.0.0.0", "--port", str(API_PORT)],  # noqa: S104 - the task ENI
            port=API_PORT,
            probe_port=API_PORT,
            probe_path=HEALTH_PATH,
        )
        worker = self._task("Worker", "worker", cfg.worker)
        self._app_container(
            worker,
            "worker",
            ["worker"],
            port=None,
            # The worker's liveness: 200 while its loop completes passes.
            probe_port=WORKER_METRICS_PORT,
            probe_path=HEALTH_PATH,
        )
        self._collector(worker, metrics_group)
        migrate = self._task("Migrate", "migrate", cfg.migrate)
        self._app_container(
            migrate, "migrate", ["migrate"], port=None, probe_port=None, probe_path=None
        )
        return AppTaskDefinitions(api, worker, migrate, self.execution_role, metrics_group)

    def _task(self, cid: str, name: str, size: TaskSize) -> ecs.FargateTaskDefinition:
        role = iam.Role(
            self.scope,
            f"{cid}TaskRole",
            role_name=f"{self.config.prefix}-{name}-task",
            description=f"MissionLink {name}: the app's own AWS calls (P5)",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        )
        task = ecs.FargateTaskDefinition(
            self.scope,
            f"{cid}TaskDefinition",
            family=f"{self.config.prefix}-{name}",
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            execution_role=self.execution_role,
            task_role=role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        task.add_volume(name="tmp")
        skip_nag(
            task,
            "AwsSolutions-ECS2",
            "Plain settings only (URLs, origins, ports); every "
            "secret is injected from Secrets Manager through `secrets` (P16).",
        )
        return task

    def _environment(self) -> dict[str, str]:
        cfg = self.config
        return {
            "MISSIONLINK_ENV": cfg.name,
            "MISSIONLINK_PUBLIC_URL": cfg.public_url,
            "MISSIONLINK_CORS_ORIGINS": ",".join(cfg.cors_origins),
            "MISSIONLINK_TRUSTED_PROXIES": self.vpc_cidr,
            # Set by CloudFront's viewer-request function from the connection (edge.py).
            "MISSIONLINK_CLIENT_IP_HEADER": "X-Viewer-Ip",
            "MISSIONLINK_SMTP_HOST": f"email-smtp.{self.region}.amazonaws.com",
            "MISSIONLINK_SMTP_PORT": "587",
            # SES offers STARTTLS on 587; requiring it means a stripped offer is no delivery.
            "MISSIONLINK_SMTP_TLS": "starttls",
            "MISSIONLINK_SMTP_FROM": f"MissionLink <no-reply@{cfg.mail_domain}>",
            "MISSIONLINK_PAYMENT_PROVIDER": cfg.payment_provider,
            "MISSIONLINK_DATA_DIR": "/tmp/missionlink",  # noqa: S108 - a per-task volume
            "MISSIONLINK_SERVE_WORKER": "0",
            "MISSIONLINK_METRICS_PORT": str(WORKER_METRICS_PORT),
        }

    def _secrets(self) -> dict[str, ecs.Secret]:
        if self._secret_refs is None:
            self._secret_refs = self._import_secrets()
        refs = self._secret_refs
        from_sm = ecs.Secret.from_secrets_manager
        return {
            "MISSIONLINK_DATABASE_URL": from_sm(refs["core_url"]),
            "MISSIONLINK_DATABASE_PASSWORD": from_sm(refs["core_db"], "password"),
            "MISSIONLINK_IDENTITY_DATABASE_URL": from_sm(refs["identity_url"]),
            "MISSIONLINK_IDENTITY_DATABASE_PASSWORD": from_sm(refs["identity_db"], "password"),
            "MISSIONLINK_BROKER_URL": from_sm(refs["broker_url"]),
            "MISSIONLINK_SMTP_USER": from_sm(refs["smtp"], "username"),
            "MISSIONLINK_SMTP_PASSWORD": from_sm(refs["smtp"], "password"),
            "MISSIONLINK_JWT_PRIVATE_KEY": from_sm(refs["jwt"]),
            "MISSIONLINK_PAYMENT_WEBHOOK_SECRET": from_sm(refs["webhook"]),
            "MISSIONLINK_PORTONE_API_SECRET": from_sm(refs["portone"], "api-secret"),
            "MISSIONLINK_PORTONE_WEBHOOK_SECRET": from_sm(refs["portone"], "webhook-secret"),
            "MISSIONLINK_STRIPE_SECRET_KEY": from_sm(refs["stripe"], "secret-key"),
            "MISSIONLINK_STRIPE_WEBHOOK_SECRET": from_sm(refs["stripe"], "webhook-secret"),
            "MISSIONLINK_PAYOUT_ACCOUNT_KEYS": from_sm(refs["payout_keys"]),
        }

    def _import_secrets(self) -> dict[str, sm.ISecret]:
        """Reference the data stack's secrets by ARN: grants stay on our roles' policies
        instead of editing the data key's policy (which would make the stacks cyclic)."""
        d = self.data
        key = kms.Key.from_key_arn(self.scope, "DataKeyRef", d.key.key_arn)
        secrets = {
            "core_url": d.core_db_url,
            "core_db": d.core_db.secret,
            "identity_url": d.identity_db_url,
            "identity_db": d.identity_db.secret,
            "broker_url": d.broker_url,
            "smtp": d.smtp_credentials,
            "jwt": d.jwt_private_key,
            "webhook": d.payment_webhook_secret,
            "portone": d.portone,
            "stripe": d.stripe,
            "payout_keys": d.payout_account_keys,
        }
        return {
            name: sm.Secret.from_secret_attributes(
                self.scope,
                f"SecretRef{name.title().replace('_', '')}",
                secret_complete_arn=secret.secret_arn,  # type: ignore[union-attr]
                encryption_key=key,
            )
            for name, secret in secrets.items()
        }

    def _app_container(
        self,
        task: ecs.FargateTaskDefinition,
        name: str,
        command: list[str],
        *,
        port: int | None,
        probe_port: int | None,
        probe_path: str | None,
    ) -> ecs.ContainerDefinition:
        group = encrypted_log_group(
            self.scope, f"{name.capitalize()}Logs", self.config, name, self.key
        )
        container = task.add_container(
            name,
            container_name=name,
            image=self.image,
            command=command,
            essential=True,
            environment=self._environment(),
            secrets=self._secrets(),
            readonly_root_filesystem=True,
            stop_timeout=Duration.seconds(30),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=name,
                log_group=group,
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
            ),
            health_check=ecs.HealthCheck(
                command=python_probe(probe_port, probe_path),
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(30),
            )
            if probe_port and probe_path
            else None,
            port_mappings=[ecs.PortMapping(container_port=port, name="http")] if port else None,
        )
        container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False)  # noqa: S108
        )
        return container

    def _collector(self, task: ecs.FargateTaskDefinition, group: logs.LogGroup) -> None:
        """Sidecar scraping the worker's /metrics and publishing the outbox age (EMF)."""
        collector_config = {
            "receivers": {
                "prometheus": {
                    "config": {
                        "scrape_configs": [
                            {
                                "job_name": "missionlink-worker",
                                "scrape_interval": "15s",
                                "static_configs": [
                                    {
                                        "targets": [f"127.0.0.1:{WORKER_METRICS_PORT}"],
                                        "labels": {"environment": self.config.name},
                                    }
                                ],
                            }
                        ]
                    }
                }
            },
            "processors": {"batch": {"timeout": "15s"}},
            "exporters": {
                "awsemf": {
                    "namespace": METRICS_NAMESPACE,
                    "log_group_name": group.log_group_name,
                    "dimension_rollup_option": "NoDimensionRollup",
                    "metric_declarations": [
                        {
                            "dimensions": [["environment"]],
                            "metric_name_selectors": [f"^{OUTBOX_METRIC}$$"],
                        }
                    ],
                }
            },
            "service": {
                "pipelines": {
                    "metrics": {
                        "receivers": ["prometheus"],
                        "processors": ["batch"],
                        "exporters": ["awsemf"],
                    }
                }
            },
        }
        sidecar_logs = encrypted_log_group(
            self.scope, "CollectorLogs", self.config, "collector", self.key
        )
        task.add_container(
            "collector",
            container_name="collector",
            image=ecs.ContainerImage.from_registry(COLLECTOR_IMAGE),
            command=["--config=env:AOT_CONFIG_CONTENT"],
            essential=False,
            environment={"AOT_CONFIG_CONTENT": json.dumps(collector_config, sort_keys=True)},
            readonly_root_filesystem=True,
            memory_reservation_mib=128,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="collector",
                log_group=sidecar_logs,
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
            ),
        )
        group.grant(
            task.task_role, "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"
        )
