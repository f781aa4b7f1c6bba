"""Network pitfalls: egress of task subnets (P2, P11, P12), endpoints (P5), ALB (P8)."""

from __future__ import annotations

from missionlink_infra.guards.model import Assembly, Resource, as_list

REQUIRED_INTERFACE_ENDPOINTS = (".ecr.api", ".ecr.dkr", ".logs")
ANYWHERE = ("0.0.0.0/0",)


def task_subnets(a: Assembly) -> list[Resource]:
    """Subnets that ECS services place tasks in."""
    found: dict[str, Resource] = {}
    for service in a.resources("AWS::ECS::Service"):
        vpc = (service.props.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
        for stack, ref in a.resolve_list(service.stack, vpc.get("Subnets")):
            subnet = a.target(stack, ref)
            if subnet is not None:
                found[str(subnet)] = subnet
    return list(found.values())


def data_subnets(a: Assembly) -> list[Resource]:
    """Subnets of database and cache subnet groups: they must stay isolated."""
    found: dict[str, Resource] = {}
    for group in a.resources("AWS::RDS::DBSubnetGroup", "AWS::ElastiCache::SubnetGroup"):
        for stack, ref in a.resolve_list(group.stack, group.props.get("SubnetIds")):
            subnet = a.target(stack, ref)
            if subnet is not None:
                found[str(subnet)] = subnet
    return list(found.values())


def route_table_of(a: Assembly, subnet: Resource) -> Resource | None:
    for assoc in a.resources("AWS::EC2::SubnetRouteTableAssociation"):
        if assoc.stack == subnet.stack and a.refers_to(
            assoc.stack, assoc.props.get("SubnetId"), subnet
        ):
            return a.target(assoc.stack, assoc.props.get("RouteTableId"))
    return None


def default_routes(a: Assembly, table: Resource) -> list[Resource]:
    routes = []
    for route in a.resources("AWS::EC2::Route"):
        if route.stack != table.stack:
            continue
        if not a.refers_to(route.stack, route.props.get("RouteTableId"), table):
            continue
        if route.props.get("DestinationCidrBlock") in ANYWHERE:
            routes.append(route)
    return routes


def egress_of(a: Assembly, subnet: Resource) -> str:
    """'nat', 'igw', 'endpoints' or 'none' for one subnet."""
    table = route_table_of(a, subnet)
    if table is None:
        return "none"
    for route in default_routes(a, table):
        if (
            route.props.get("NatGatewayId")
            or route.props.get("InstanceId")
            or route.props.get("NetworkInterfaceId")
            or route.props.get("TransitGatewayId")
        ):
            return "nat"
        gateway = a.target(route.stack, route.props.get("GatewayId"))
        if gateway is not None and gateway.type == "AWS::EC2::InternetGateway":
            return "igw"
    return "endpoints" if not endpoint_gaps(a, subnet, table) else "none"


def _service(a: Assembly, endpoint: Resource) -> str:
    return a.flat(endpoint.stack, endpoint.props.get("ServiceName"))


def endpoint_gaps(a: Assembly, subnet: Resource, table: Resource | None) -> list[str]:
    """What a subnet without a NAT still lacks to pull images and start tasks (P12)."""
    gaps: list[str] = []
    needed = list(REQUIRED_INTERFACE_ENDPOINTS)
    if uses_secrets(a):
        needed.append(".secretsmanager")
    endpoints = list(a.resources("AWS::EC2::VPCEndpoint"))
    for suffix in needed:
        match = [
            e
            for e in endpoints
            if _service(a, e).endswith(suffix) and e.props.get("VpcEndpointType") == "Interface"
        ]
        usable = [e for e in match if _covers_subnet(a, e, subnet)]
        if not usable:
            gaps.append(f"interface endpoint *{suffix} reachable from {subnet.logical_id}")
            continue
        for endpoint in usable:
            if endpoint.props.get("PrivateDnsEnabled") is not True:
                gaps.append(f"private DNS on the *{suffix} endpoint")
            if not _allows_https_from_vpc(a, endpoint):
                gaps.append(f"a security group allowing 443 from the VPC on *{suffix}")
    s3 = [
        e
        for e in endpoints
        if _service(a, e).endswith(".s3") and e.props.get("VpcEndpointType", "Gateway") == "Gateway"
    ]
    if table is None or not any(
        any(a.refers_to(e.stack, ref, table) for ref in as_list(e.props.get("RouteTableIds")))
        for e in s3
    ):
        gaps.append(f"an S3 gateway endpoint on the route table of {subnet.logical_id}")
    return gaps


def _covers_subnet(a: Assembly, endpoint: Resource, subnet: Resource) -> bool:
    return any(
        a.refers_to(stack, ref, subnet)
        for stack, ref in a.resolve_list(endpoint.stack, endpoint.props.get("SubnetIds"))
    )


def _allows_https_from_vpc(a: Assembly, endpoint: Resource) -> bool:
    for stack, ref in a.resolve_list(endpoint.stack, endpoint.props.get("SecurityGroupIds")):
        group = a.target(stack, ref)
        if group is None:
            continue
        rules = list(as_list(group.props.get("SecurityGroupIngress")))
        rules += [
            r.props
            for r in a.resources("AWS::EC2::SecurityGroupIngress")
            if a.refers_to(r.stack, r.props.get("GroupId"), group)
        ]
        for rule in rules:
            low, high = rule.get("FromPort"), rule.get("ToPort")
            if (
                rule.get("IpProtocol") in ("tcp", "-1")
                and (rule.get("IpProtocol") == "-1" or (low is not None and low <= 443 <= high))
                and (rule.get("CidrIp") or rule.get("SourceSecurityGroupId"))
            ):
                return True
    return False


def uses_secrets(a: Assembly) -> bool:
    for task in a.resources("AWS::ECS::TaskDefinition"):
        for container in as_list(task.props.get("ContainerDefinitions")):
            if container.get("Secrets"):
                return True
    return False


def check_task_subnet_egress(a: Assembly) -> list[str]:
    """P2 + P12: every task subnet reaches ECR, logs and secrets (NAT or endpoints)."""
    problems = []
    for subnet in task_subnets(a):
        kind = egress_of(a, subnet)
        if kind == "none":
            gaps = endpoint_gaps(a, subnet, route_table_of(a, subnet))
            problems.append(
                f"P2/P12: task subnet {subnet} has no NAT route and lacks " + "; ".join(gaps)
            )
    return problems


def check_same_egress_per_subnet(a: Assembly) -> list[str]:
    """P11: egress is decided per subnet, so every task subnet must have the same kind,
    and the isolated data subnets must have none."""
    problems = []
    kinds = {str(s): egress_of(a, s) for s in task_subnets(a)}
    if len(set(kinds.values())) > 1:
        problems.append(f"P11: task subnets differ in egress: {kinds}")
    for subnet, kind in kinds.items():
        if kind == "igw":
            problems.append(f"P11: task subnet {subnet} routes straight to the internet gateway")
    for subnet in data_subnets(a):
        table = route_table_of(a, subnet)
        if table is not None and default_routes(a, table):
            problems.append(f"P11: data subnet {subnet} has a default route; it must be isolated")
    return problems


def check_gateway_endpoints(a: Assembly) -> list[str]:
    """P5: S3 (and DynamoDB when any policy uses it) gateway endpoints on task subnets."""
    problems = []
    needs_dynamodb = any(
        action.startswith("dynamodb:")
        for _, statement in policy_statements(a)
        for action in as_list(statement.get("Action"))
        if isinstance(action, str)
    )
    services = [".s3", ".dynamodb"] if needs_dynamodb else [".s3"]
    endpoints = list(a.resources("AWS::EC2::VPCEndpoint"))
    for subnet in task_subnets(a):
        table = route_table_of(a, subnet)
        for suffix in services:
            ok = table is not None and any(
                _service(a, e).endswith(suffix)
                and any(
                    a.refers_to(e.stack, ref, table)
                    for ref in as_list(e.props.get("RouteTableIds"))
                )
                for e in endpoints
            )
            if not ok:
                problems.append(f"P5: task subnet {subnet} has no *{suffix} gateway endpoint")
    return problems


def check_internet_facing_alb(a: Assembly) -> list[str]:
    """P8: an internet-facing load balancer sits only in subnets routed to an IGW."""
    problems = []
    for lb in a.resources("AWS::ElasticLoadBalancingV2::LoadBalancer"):
        if lb.props.get("Scheme", "internet-facing") != "internet-facing":
            continue
        subnets = [a.target(s, r) for s, r in a.resolve_list(lb.stack, lb.props.get("Subnets"))]
        mappings = as_list(lb.props.get("SubnetMappings"))
        subnets += [a.target(lb.stack, m.get("SubnetId")) for m in mappings]
        if not subnets:
            problems.append(f"P8: internet-facing load balancer {lb} names no subnets")
        for subnet in subnets:
            if subnet is None:
                problems.append(f"P8: load balancer {lb} uses a subnet outside the templates")
            elif egress_of(a, subnet) != "igw":
                problems.append(
                    f"P8: internet-facing load balancer {lb} is in {subnet}, whose route table "
                    "has no internet-gateway route"
                )
    return problems


def policy_statements(a: Assembly) -> list[tuple[Resource, dict[str, object]]]:
    """(owner, statement) for every identity policy in the templates."""
    out: list[tuple[Resource, dict[str, object]]] = []
    for res in a.resources("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for st in as_list((res.props.get("PolicyDocument") or {}).get("Statement")):
            out.append((res, st))
    for res in a.resources("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for policy in as_list(res.props.get("Policies")):
            for st in as_list((policy.get("PolicyDocument") or {}).get("Statement")):
                out.append((res, st))
    return out
