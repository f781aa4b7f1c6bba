"""ECS pitfalls: capacity (P1), size (P3), ports (P4), task definitions (P13, P14, P16),
deploy strategy and scaling in code (P15)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from missionlink_infra.guards.model import Assembly, Json, Resource, as_list

HEALTH_PATH = "/healthz"
FARGATE_PROVIDERS = {"FARGATE", "FARGATE_SPOT"}
# Fargate CPU units -> allowed memory in MiB.
FARGATE_SIZES: dict[int, set[int]] = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
    8192: set(range(16384, 61441, 4096)),
    16384: set(range(32768, 122881, 8192)),
}
IMMUTABLE_REF = re.compile(
    r"(?:@sha256:[0-9a-f]{64}|:(?:[0-9a-f]{40}|v?\d+\.\d+\.\d+(?:-rc\.\d+)?))$"
)
SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|DATABASE_URL|BROKER_URL", re.IGNORECASE
)
# The product's settings: any it types SecretStr is a secret whatever its name says.
CONFIG_PY = Path(__file__).resolve().parents[4] / "src" / "missionlink" / "config.py"
SECRET_STORES = (
    "AWS::SecretsManager::Secret",
    "AWS::SecretsManager::SecretTargetAttachment",
    "AWS::SSM::Parameter",
)
ENDPOINT_ATTRIBUTES = (
    "Endpoint.Address",
    "RedisEndpoint",
    "PrimaryEndPoint",
    "ReadEndpoint",
    "ConfigurationEndPoint",
)


@functools.cache
def secret_typed_settings() -> frozenset[str]:
    """MISSIONLINK_<NAME> of every setting config.py types ``SecretStr``."""
    names = re.findall(r"^    ([a-z_]+): [^=\n]*\bSecretStr\b", CONFIG_PY.read_text(), re.M)
    return frozenset(f"MISSIONLINK_{n.upper()}" for n in names)


def is_secret(name: str) -> bool:
    """A credential: by its name, or a setting config.py types ``SecretStr``."""
    return bool(SECRET_NAME.search(name)) or name.upper() in secret_typed_settings()


def task_definition_of(a: Assembly, service: Resource) -> Resource | None:
    """The service's task definition: by reference, or by family name."""
    value = service.props.get("TaskDefinition")
    hit = a.target(service.stack, value)
    if hit is not None:
        return hit
    family = a.flat(service.stack, value).split(":")[0]
    for task in a.resources("AWS::ECS::TaskDefinition"):
        if task.props.get("Family") == family:
            return task
    return None


def containers(task: Resource) -> list[dict[str, Json]]:
    return list(as_list(task.props.get("ContainerDefinitions")))


def check_capacity(a: Assembly) -> list[str]:
    """P1: services run on Fargate or on a capacity provider that exists."""
    problems = []
    defined = {
        str(r.props.get("Name", r.logical_id)) for r in a.resources("AWS::ECS::CapacityProvider")
    }
    for service in a.resources("AWS::ECS::Service"):
        if service.props.get("LaunchType") == "FARGATE":
            continue
        strategy = as_list(service.props.get("CapacityProviderStrategy"))
        if not strategy and service.props.get("LaunchType") is None:
            strategy = _cluster_default_strategy(a, service)
            if not strategy:
                problems.append(
                    f"P1: service {service} has no launch type and its cluster's default "
                    "capacity provider strategy is empty: tasks would never start"
                )
                continue
        for item in strategy:
            name = a.flat(service.stack, item.get("CapacityProvider"))
            if name not in FARGATE_PROVIDERS and name not in defined and not name.startswith("<"):
                problems.append(
                    f"P1: service {service} names capacity provider {name!r}, which does not exist"
                )
        if service.props.get("LaunchType") not in (None, "FARGATE"):
            problems.append(
                f"P1: service {service} uses launch type "
                f"{service.props.get('LaunchType')}, not FARGATE"
            )
    return problems


def _cluster_default_strategy(a: Assembly, service: Resource) -> list[Json]:
    cluster = a.target(service.stack, service.props.get("Cluster"))
    if cluster is None:
        return []
    strategy = list(as_list(cluster.props.get("DefaultCapacityProviderStrategy")))
    for assoc in a.resources("AWS::ECS::ClusterCapacityProviderAssociations"):
        if a.refers_to(assoc.stack, assoc.props.get("Cluster"), cluster):
            strategy += as_list(assoc.props.get("DefaultCapacityProviderStrategy"))
    return strategy


def check_task_size(a: Assembly) -> list[str]:
    """P3: CPU/memory is a Fargate combination, and containers fit inside it."""
    problems = []
    for task in a.resources("AWS::ECS::TaskDefinition"):
        if "FARGATE" not in as_list(task.props.get("RequiresCompatibilities")):
            continue
        try:
            cpu, memory = int(task.props.get("Cpu", 0)), int(task.props.get("Memory", 0))
        except (TypeError, ValueError):
            problems.append(f"P3: task definition {task} has no literal Cpu/Memory")
            continue
        if memory not in FARGATE_SIZES.get(cpu, set()):
            problems.append(
                f"P3: task definition {task} asks for {cpu} CPU with {memory} MiB, "
                "which Fargate cannot place"
            )
        reserved = sum(
            int(c.get("MemoryReservation") or c.get("Memory") or 0) for c in containers(task)
        )
        if reserved > memory:
            problems.append(f"P3: containers of {task} reserve {reserved} MiB of {memory} MiB")
    return problems


def check_ports_and_health(a: Assembly) -> list[str]:
    """P4: target group port/health check equal the container port and /healthz."""
    problems = []
    for service in a.resources("AWS::ECS::Service"):
        balancers = as_list(service.props.get("LoadBalancers"))
        if not balancers:
            continue
        task = task_definition_of(a, service)
        if task is None:
            problems.append(f"P4: service {service}'s task definition is not in the templates")
            continue
        for lb in balancers:
            name, port = lb.get("ContainerName"), lb.get("ContainerPort")
            container = next((c for c in containers(task) if c.get("Name") == name), None)
            if container is None:
                problems.append(
                    f"P4: service {service} routes to container {name!r}, "
                    f"which {task} does not define"
                )
                continue
            ports = {m.get("ContainerPort") for m in as_list(container.get("PortMappings"))}
            if port not in ports:
                problems.append(f"P4: container {name!r} of {task} does not expose port {port}")
            groups = [a.target(service.stack, lb.get("TargetGroupArn"))]
            groups += _green_groups(a, service)
            for group in filter(None, groups):
                problems += _check_target_group(group, port)
    return problems


def _green_groups(a: Assembly, service: Resource) -> list[Resource | None]:
    out: list[Resource | None] = []
    for dg in a.resources("AWS::CodeDeploy::DeploymentGroup"):
        for info in as_list(dg.props.get("LoadBalancerInfo", {}).get("TargetGroupPairInfoList")):
            for tg in as_list(info.get("TargetGroups")):
                out.append(a.target(dg.stack, tg.get("Name")))
    return out


def _check_target_group(group: Resource, port: int) -> list[str]:
    p = group.props
    problems = []
    if p.get("Port") != port:
        problems.append(
            f"P4: target group {group} listens on {p.get('Port')}, the container on {port}"
        )
    hc_port = p.get("HealthCheckPort", "traffic-port")
    if hc_port not in ("traffic-port", str(port)):
        problems.append(f"P4: target group {group} health-checks port {hc_port}, not {port}")
    if p.get("HealthCheckPath") != HEALTH_PATH:
        problems.append(
            f"P4: target group {group} health-checks {p.get('HealthCheckPath')!r}, "
            f"not {HEALTH_PATH}"
        )
    if p.get("TargetType") != "ip":
        problems.append(f"P4: target group {group} must register Fargate tasks by IP")
    return problems


def empty_values(value: Json, path: str = "") -> list[str]:
    """Paths of empty lists, maps and strings (the deploy API rejects e.g. "tags": [])."""
    if isinstance(value, dict):
        if not value:
            return [path or "/"]
        if "Fn::Join" in value:  # the delimiter may well be ""
            return empty_values(value["Fn::Join"][1], f"{path}/Fn::Join/1")
        return [p for k, v in value.items() for p in empty_values(v, f"{path}/{k}")]
    if isinstance(value, list):
        if not value:
            return [path or "/"]
        return [p for i, v in enumerate(value) for p in empty_values(v, f"{path}/{i}")]
    if isinstance(value, str) and not value.strip():
        return [path]
    return []


def check_no_empty_values(a: Assembly) -> list[str]:
    """P13: task definitions carry no empty lists/values."""
    return [
        f"P13: task definition {task} has an empty value at {path}"
        for task in a.resources("AWS::ECS::TaskDefinition")
        for path in empty_values(task.props)
    ]


def check_image_references(a: Assembly) -> list[str]:
    """P14: every image is pinned by an immutable tag (git SHA, semver) or a digest."""
    problems = []
    for task in a.resources("AWS::ECS::TaskDefinition"):
        for container in containers(task):
            image = a.flat(task.stack, container.get("Image"))
            if not IMMUTABLE_REF.search(image):
                problems.append(
                    f"P14: container {container.get('Name')!r} of {task} uses "
                    f"image {image!r}: not an immutable tag or digest"
                )
    return problems


def check_secrets_by_reference(a: Assembly) -> list[str]:
    """P16: secrets come from Secrets Manager by reference, never as plain values."""
    problems = []
    for task in a.resources("AWS::ECS::TaskDefinition"):
        for container in containers(task):
            label = f"container {container.get('Name')!r} of {task}"
            for env in as_list(container.get("Environment")):
                name, value = str(env.get("Name", "")), env.get("Value")
                text = a.flat(task.stack, value)
                if is_secret(name):
                    problems.append(f"P16: {label} sets {name} as a plain environment value")
                elif "{{resolve:" in text or any(att in text for att in ENDPOINT_ATTRIBUTES):
                    problems.append(f"P16: {label} puts a secret or endpoint in {name}")
            for secret in as_list(container.get("Secrets")):
                source = a.flat(task.stack, secret.get("ValueFrom"))
                by_ref = any(
                    t.type in SECRET_STORES
                    for t in a.references(task.stack, secret.get("ValueFrom"))
                )
                if not by_ref and ":secretsmanager:" not in source and ":ssm:" not in source:
                    problems.append(
                        f"P16: {label} reads {secret.get('Name')} from {source!r}, "
                        "not from Secrets Manager"
                    )
    return problems


def check_release_strategy(a: Assembly) -> list[str]:
    """P15: blue/green with automatic rollback on alarm, autoscaling and alarms in code."""
    problems = []
    services = list(a.resources("AWS::ECS::Service"))
    if not services:
        return ["P15: no ECS service in this environment"]
    groups = list(a.resources("AWS::CodeDeploy::DeploymentGroup"))
    for service in services:
        controller = (service.props.get("DeploymentController") or {}).get("Type", "ECS")
        config = service.props.get("DeploymentConfiguration") or {}
        if service.props.get("LoadBalancers"):
            if controller != "CODE_DEPLOY":
                problems.append(
                    f"P15: load-balanced service {service} is not blue/green "
                    "(CODE_DEPLOY controller)"
                )
            problems += _check_blue_green(a, service, groups)
        elif controller == "ECS":
            breaker = config.get("DeploymentCircuitBreaker") or {}
            alarms = config.get("Alarms") or {}
            if not (breaker.get("Enable") and breaker.get("Rollback")):
                problems.append(f"P15: service {service} has no rollback circuit breaker")
            if not (alarms.get("Enable") and alarms.get("Rollback") and alarms.get("AlarmNames")):
                problems.append(f"P15: service {service} does not roll back on alarm")
        if not _scalable(a, service):
            problems.append(f"P15: service {service} has no autoscaling in code")
    if not any(
        p.props.get("PolicyType") == "StepScaling"
        for p in a.resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    ):
        problems.append("P15: no step-scaling policy in this environment")
    alarms = list(a.resources("AWS::CloudWatch::Alarm"))
    if not alarms:
        problems.append("P15: no CloudWatch alarm in this environment")
    for alarm in alarms:
        if not alarm.props.get("AlarmActions"):
            problems.append(f"P15: alarm {alarm} notifies nobody")
    return problems


def _check_blue_green(a: Assembly, service: Resource, groups: list[Resource]) -> list[str]:
    mine = [
        g
        for g in groups
        if any(
            a.refers_to(g.stack, ecs.get("ServiceName"), service)
            for ecs in as_list(g.props.get("ECSServices"))
        )
    ]
    if not mine:
        return [f"P15: no CodeDeploy deployment group deploys {service}"]
    problems = []
    for group in mine:
        p = group.props
        style = p.get("DeploymentStyle") or {}
        rollback = p.get("AutoRollbackConfiguration") or {}
        alarms = p.get("AlarmConfiguration") or {}
        if style.get("DeploymentType") != "BLUE_GREEN":
            problems.append(f"P15: deployment group {group} is not BLUE_GREEN")
        events = set(as_list(rollback.get("Events")))
        if (
            not rollback.get("Enabled")
            or not {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"} <= events
        ):
            problems.append(
                f"P15: deployment group {group} does not roll back automatically on "
                "failure and on alarm"
            )
        if not alarms.get("Enabled") or not alarms.get("Alarms"):
            problems.append(f"P15: deployment group {group} watches no alarm")
    return problems


def _scalable(a: Assembly, service: Resource) -> bool:
    name = a.flat(service.stack, service.props.get("ServiceName"))
    for target in a.resources("AWS::ApplicationAutoScaling::ScalableTarget"):
        resource_id = a.flat(target.stack, target.props.get("ResourceId"))
        if resource_id.endswith(f"/{name}") or f"<{service.logical_id}.Name>" in resource_id:
            return int(target.props.get("MaxCapacity", 0)) >= int(
                target.props.get("MinCapacity", 0)
            )
    return False
