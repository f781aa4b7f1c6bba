"""Guards for the deployment pitfalls P1-P17 (see docs/deploy-aws.md).

Each guard returns a list of problems; every message starts with the pitfall id.
"""

from __future__ import annotations

from collections.abc import Callable

from missionlink_infra.guards import compute, edge, iam, network
from missionlink_infra.guards.model import Assembly

TemplateGuard = Callable[[Assembly], list[str]]

TEMPLATE_GUARDS: dict[str, TemplateGuard] = {
    "P1": compute.check_capacity,
    "P2": network.check_task_subnet_egress,
    "P3": compute.check_task_size,
    "P4": compute.check_ports_and_health,
    "P5": lambda a: iam.check_role_split(a) + network.check_gateway_endpoints(a),
    "P6": edge.check_cors_preflight,
    "P7": iam.check_ci_credentials,
    "P8": network.check_internet_facing_alb,
    "P9": edge.check_private_bucket,
    "P10": edge.check_step_coverage,
    "P11": network.check_same_egress_per_subnet,
    "P12": network.check_task_subnet_egress,
    "P13": compute.check_no_empty_values,
    "P14": compute.check_image_references,
    "P15": compute.check_release_strategy,
    "P16": compute.check_secrets_by_reference,
    "P17": iam.check_least_privilege,
}


def run_template_guards(assembly: Assembly) -> list[str]:
    """Every template guard over one environment; an empty list means all hold."""
    problems: list[str] = []
    for guard in dict.fromkeys(TEMPLATE_GUARDS.values()):
        problems += guard(assembly)
    return sorted(set(problems))


__all__ = ["TEMPLATE_GUARDS", "Assembly", "run_template_guards"]
