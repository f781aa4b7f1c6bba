"""Edge pitfalls: CORS preflights through CloudFront (P6), private static bucket (P9),
step scaling that covers the whole breach (P10)."""

from __future__ import annotations

import itertools
import math

from missionlink_infra.guards.model import Assembly, Json, Resource, as_list

# CloudFront managed origin request policies that forward every viewer header.
FORWARD_ALL_VIEWER_HEADERS = {
    "216adef6-5c7f-47e4-b989-5492eafa07d3",  # AllViewer
    "b689b0a8-53d0-40ab-baf2-68738e2966ac",  # AllViewerExceptHostHeader
}
PREFLIGHT_HEADERS = {"origin", "access-control-request-headers", "access-control-request-method"}
API_PATHS = ("/api/*",)


def _forwards_preflight_headers(a: Assembly, stack: str, behavior: dict[str, Json]) -> bool:
    policy = behavior.get("OriginRequestPolicyId")
    if a.flat(stack, policy) in FORWARD_ALL_VIEWER_HEADERS:
        return True
    custom = a.target(stack, policy)
    if custom is None:
        return False
    headers = (custom.props.get("OriginRequestPolicyConfig") or {}).get("HeadersConfig") or {}
    if headers.get("HeaderBehavior") in ("allViewer", "allViewerAndWhitelistCloudFront"):
        return True
    listed = {str(h).lower() for h in as_list((headers.get("Headers") or {}).get("Items"))}
    return listed >= PREFLIGHT_HEADERS


def check_cors_preflight(a: Assembly, *, cors_origins: list[str] | None = None) -> list[str]:
    """P6: OPTIONS preflights reach the app with their headers; origins set per env."""
    problems = []
    for dist in a.resources("AWS::CloudFront::Distribution"):
        config = dist.props.get("DistributionConfig") or {}
        behaviors = as_list(config.get("CacheBehaviors"))
        for path in API_PATHS:
            match = [b for b in behaviors if b.get("PathPattern") == path]
            behavior = match[0] if match else config.get("DefaultCacheBehavior") or {}
            methods = set(as_list(behavior.get("AllowedMethods")) or ["GET", "HEAD"])
            if "OPTIONS" not in methods:
                problems.append(
                    f"P6: {dist} answers OPTIONS for {path} itself instead of "
                    "forwarding the browser's preflight"
                )
            if not _forwards_preflight_headers(a, dist.stack, behavior):
                problems.append(
                    f"P6: {dist} drops Origin/Access-Control-Request-* headers on {path}"
                )
    for task in a.resources("AWS::ECS::TaskDefinition"):
        for container in as_list(task.props.get("ContainerDefinitions")):
            if not any(m.get("ContainerPort") for m in as_list(container.get("PortMappings"))):
                continue
            env = {e.get("Name"): e.get("Value") for e in as_list(container.get("Environment"))}
            origins = [o for o in str(env.get("MISSIONLINK_CORS_ORIGINS") or "").split(",") if o]
            if not origins or "*" in origins:
                problems.append(f"P6: {task} serves HTTP without explicit CORS origins")
            for wanted in cors_origins or []:
                if wanted not in origins:
                    problems.append(f"P6: {task} does not allow the origin {wanted}")
    return problems


def check_private_bucket(a: Assembly) -> list[str]:
    """P9: buckets block all public access; only CloudFront (OAC + SourceArn) reads them."""
    problems = []
    for bucket in a.resources("AWS::S3::Bucket"):
        block = bucket.props.get("PublicAccessBlockConfiguration") or {}
        flags = (
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        )
        if not all(block.get(flag) is True for flag in flags):
            problems.append(f"P9: bucket {bucket} does not block all public access")
    for policy in a.resources("AWS::S3::BucketPolicy"):
        for st in as_list((policy.props.get("PolicyDocument") or {}).get("Statement")):
            if st.get("Effect") != "Allow":
                continue
            principal = st.get("Principal")
            if _is_public(principal):
                problems.append(f"P9: bucket policy {policy} allows Principal '*'")
            elif isinstance(principal, dict) and "cloudfront.amazonaws.com" in as_list(
                principal.get("Service")
            ):
                source = ((st.get("Condition") or {}).get("StringEquals") or {}).get(
                    "AWS:SourceArn"
                )
                if not source:
                    problems.append(
                        f"P9: bucket policy {policy} lets any CloudFront "
                        "distribution read (no AWS:SourceArn condition)"
                    )
    for dist in a.resources("AWS::CloudFront::Distribution"):
        config = dist.props.get("DistributionConfig") or {}
        for origin in as_list(config.get("Origins")):
            if "S3OriginConfig" in origin and not origin.get("OriginAccessControlId"):
                problems.append(f"P9: {dist} reads S3 origin {origin.get('Id')} without OAC")
            domain = a.flat(dist.stack, origin.get("DomainName"))
            if "s3-website" in domain:
                problems.append(f"P9: {dist} uses a public S3 website endpoint")
    return problems


def _is_public(principal: Json) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))


def check_step_coverage(a: Assembly) -> list[str]:
    """P10: every step policy's intervals cover the whole breach side, no gaps/overlaps."""
    problems = []
    for policy in a.resources(
        "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::AutoScaling::ScalingPolicy"
    ):
        if policy.props.get("PolicyType") != "StepScaling":
            continue
        config = policy.props.get("StepScalingPolicyConfiguration") or policy.props
        steps = as_list(config.get("StepAdjustments"))
        side = _breach_side(a, policy, steps)
        problems += [f"P10: step policy {policy}: {p}" for p in _coverage(steps, side)]
    return problems


def _breach_side(a: Assembly, policy: Resource, steps: list[Json]) -> str:
    for alarm in a.resources("AWS::CloudWatch::Alarm"):
        if any(
            a.refers_to(alarm.stack, act, policy)
            for act in as_list(alarm.props.get("AlarmActions"))
        ):
            op = str(alarm.props.get("ComparisonOperator", ""))
            return "below" if op.startswith("LessThan") else "above"
    bounds = [
        b
        for s in steps
        for b in (s.get("MetricIntervalLowerBound"), s.get("MetricIntervalUpperBound"))
        if b is not None
    ]
    return "below" if bounds and max(float(b) for b in bounds) <= 0 else "above"


def _coverage(steps: list[Json], side: str) -> list[str]:
    if not steps:
        return ["has no steps"]
    spans = sorted(
        (
            float(s["MetricIntervalLowerBound"]) if "MetricIntervalLowerBound" in s else -math.inf,
            float(s["MetricIntervalUpperBound"]) if "MetricIntervalUpperBound" in s else math.inf,
        )
        for s in steps
    )
    start, end = (0.0, math.inf) if side == "above" else (-math.inf, 0.0)
    problems = []
    if spans[0][0] > start:
        problems.append(
            f"nothing covers the breach from {start} to {spans[0][0]} (No step adjustment found)"
        )
    for (_lo1, hi1), (lo2, _hi2) in itertools.pairwise(spans):
        if lo2 > hi1:
            problems.append(f"gap between {hi1} and {lo2}")
        elif lo2 < hi1:
            problems.append(f"steps overlap between {lo2} and {hi1}")
    if spans[-1][1] < end:
        problems.append(f"nothing covers breaches beyond {spans[-1][1]}")
    for lo, hi in spans:
        if lo >= hi:
            problems.append(f"empty interval [{lo}, {hi})")
    return problems
