"""IAM pitfalls: execution vs task role (P5), no keys and scoped OIDC trust (P7),
named actions on named resources (P17)."""

from __future__ import annotations

from missionlink_infra.guards.model import Assembly, Json, Resource, as_list
from missionlink_infra.guards.network import policy_statements

# What the ECS agent needs before the app starts: pull, log, read injected secrets.
EXECUTION_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "ssm:GetParameters",
    "kms:Decrypt",
}
# Image pulls belong to the execution role; the app itself never needs them.
PULL_ACTIONS = {"ecr:GetAuthorizationToken", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"}
# Actions AWS does not let a policy scope to a resource.
UNSCOPED_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ecs:RegisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "logs:DescribeLogGroups",
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ec2:DescribeSecurityGroups",
}
# AWS-maintained policies that only let one AWS service do its own job.
ALLOWED_MANAGED = (
    "service-role/AmazonRDSEnhancedMonitoringRole",
    "AWSCodeDeployRoleForECS",
    "service-role/AWSLambdaBasicExecutionRole",
)
FORBIDDEN_MANAGED = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
GITHUB = "token.actions.githubusercontent.com"


def _attached_statements(a: Assembly, role: Resource) -> list[dict[str, Json]]:
    out: list[dict[str, Json]] = []
    for policy in as_list(role.props.get("Policies")):
        out += as_list((policy.get("PolicyDocument") or {}).get("Statement"))
    for res in a.resources("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        if any(a.refers_to(res.stack, ref, role) for ref in as_list(res.props.get("Roles"))):
            out += as_list((res.props.get("PolicyDocument") or {}).get("Statement"))
    return out


def _actions(statements: list[dict[str, Json]]) -> set[str]:
    return {
        str(action)
        for st in statements
        if st.get("Effect") == "Allow"
        for action in as_list(st.get("Action"))
    }


def check_role_split(a: Assembly) -> list[str]:
    """P5: pull/log permissions on the execution role, data-plane ones on the task role."""
    problems = []
    for task in a.resources("AWS::ECS::TaskDefinition"):
        execution = a.target(task.stack, task.props.get("ExecutionRoleArn"))
        task_role = a.target(task.stack, task.props.get("TaskRoleArn"))
        if execution is None:
            problems.append(f"P5: task definition {task} has no execution role")
            continue
        if task_role is not None and str(task_role) == str(execution):
            problems.append(f"P5: task definition {task} uses one role for execution and task")
        extra = _actions(_attached_statements(a, execution)) - EXECUTION_ACTIONS
        if extra:
            problems.append(
                f"P5: execution role {execution} carries data-plane actions "
                f"{sorted(extra)}; they belong on the task role"
            )
        if task_role is not None:
            pulls = _actions(_attached_statements(a, task_role)) & PULL_ACTIONS
            if pulls:
                problems.append(
                    f"P5: task role {task_role} carries image-pull actions "
                    f"{sorted(pulls)}; they belong on the execution role"
                )
    return problems


def check_least_privilege(a: Assembly) -> list[str]:
    """P17: named actions on named resources; no admin policies, no `*` actions."""
    problems = []
    for owner, st in policy_statements(a):
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"P17: {owner} allows NotAction/NotResource")
        actions = [str(x) for x in as_list(st.get("Action"))]
        for action in actions:
            if action == "*" or action.endswith(":*") or action == "*:*":
                problems.append(f"P17: {owner} grants wildcard action {action!r}")
        resources = [a.flat(owner.stack, r) for r in as_list(st.get("Resource"))]
        if "*" in resources:
            unscoped = [x for x in actions if x not in UNSCOPED_ACTIONS]
            if unscoped:
                problems.append(
                    f"P17: {owner} grants {sorted(unscoped)} on every resource "
                    "('*'); name the resources"
                )
    for res in a.resources("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for arn in as_list(res.props.get("ManagedPolicyArns")):
            text = a.flat(res.stack, arn)
            if any(text.endswith(f"policy/{name}") for name in FORBIDDEN_MANAGED):
                problems.append(f"P17: {res} attaches {text}")
            elif ":aws:policy/" in text and not text.endswith(ALLOWED_MANAGED):
                problems.append(f"P17: {res} attaches AWS-managed {text}; write a named policy")
    problems += [
        f"P17: {key} creates a long-lived access key" for key in a.resources("AWS::IAM::AccessKey")
    ]
    return problems


def check_ci_credentials(a: Assembly) -> list[str]:
    """P7: no access keys; GitHub roles trust only this repository's OIDC tokens."""
    problems = [
        f"P7: {key} creates a long-lived access key" for key in a.resources("AWS::IAM::AccessKey")
    ]
    for role in a.resources("AWS::IAM::Role"):
        for st in as_list((role.props.get("AssumeRolePolicyDocument") or {}).get("Statement")):
            if not _trusts_github(a, role, st.get("Principal")):
                continue
            conditions = st.get("Condition") or {}
            exact = conditions.get("StringEquals") or {}
            like = conditions.get("StringLike") or {}
            if exact.get(f"{GITHUB}:aud") != "sts.amazonaws.com":
                problems.append(f"P7: GitHub role {role} does not pin the token audience")
            sub = exact.get(f"{GITHUB}:sub") or like.get(f"{GITHUB}:sub")
            if not sub or any(str(s).startswith("repo:*") or str(s) == "*" for s in as_list(sub)):
                problems.append(f"P7: GitHub role {role} trusts any repository's tokens")
    return problems


def _trusts_github(a: Assembly, role: Resource, principal: Json) -> bool:
    if not isinstance(principal, dict) or "Federated" not in principal:
        return False
    federated = principal["Federated"]
    provider = a.target(role.stack, federated)
    if provider is not None and provider.type == "AWS::IAM::OIDCProvider":
        return GITHUB in a.flat(provider.stack, provider.props.get("Url"))
    return GITHUB in a.flat(role.stack, federated)
