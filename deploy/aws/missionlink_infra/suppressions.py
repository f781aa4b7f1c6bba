"""Every suppressed finding goes through here, so each one carries a written reason."""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct


def _cfn(construct: IConstruct) -> CfnResource:
    if isinstance(construct, CfnResource):
        return construct
    child = construct.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    return child


def skip_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    """Record a checkov skip (with its reason) in the resource's metadata."""
    resource = _cfn(construct)
    meta = resource.get_metadata("checkov") or {"skip": []}
    meta["skip"].append({"id": check_id, "comment": reason})
    resource.add_metadata("checkov", meta)


def skip_cfn_lint(construct: IConstruct, rule_id: str) -> None:
    """Ignore a cfn-lint rule on one resource (call sites say why)."""
    resource = _cfn(construct)
    meta = resource.get_metadata("cfn-lint") or {"config": {"ignore_checks": []}}
    meta["config"]["ignore_checks"].append(rule_id)
    resource.add_metadata("cfn-lint", meta)


def skip_nag(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (``Rule`` or ``Rule[Finding]``) on a construct."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def skip_nag_wildcards(
    construct: IConstruct, resources: list[str], reason: str, *, actions: tuple[str, ...] = ()
) -> None:
    """Acknowledge AwsSolutions-IAM5 findings for the named wildcard resources (and
    actions), spelled the way cdk-nag spells them, so each acknowledgement stays exact."""
    stack = Stack.of(construct)
    for resource in resources:
        flat = nag_flatten(stack.resolve(resource))
        skip_nag(construct, f"AwsSolutions-IAM5[Resource::{flat}]", reason)
    for action in actions:
        skip_nag(construct, f"AwsSolutions-IAM5[Action::{action}]", reason)


def nag_flatten(node: object) -> str:
    """cdk-nag's flattenCfnReference: a resolved CloudFormation value as one string."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(nag_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return nag_flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{nag_flatten(resource)}.{nag_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return nag_flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{nag_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
