"""Internet-facing ALB in public subnets: HTTPS only, /metrics closed, regional WAF."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, CfnParameter, Duration, RemovalPolicy, Stack
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from missionlink_infra.config import API_PORT, HEALTH_PATH, EnvConfig
from missionlink_infra.keys import encrypted_log_group
from missionlink_infra.network import NetworkStack

METRICS_PATHS = ["/metrics", "/metrics/*"]


@dataclass(frozen=True)
class LoadBalancer:
    alb: elbv2.ApplicationLoadBalancer
    https: elbv2.ApplicationListener
    blue: elbv2.ApplicationTargetGroup
    green: elbv2.ApplicationTargetGroup
    web_acl: wafv2.CfnWebACL


def build_load_balancer(
    scope: Construct,
    *,
    config: EnvConfig,
    network: NetworkStack,
    logs_bucket: s3.IBucket,
    key: object,
) -> LoadBalancer:
    certificate = CfnParameter(
        scope,
        "AlbCertificateArn",
        type="String",
        description=f"ACM certificate ARN (this region) for {config.origin_domain_name}",
        allowed_pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$",
    )
    alb = elbv2.ApplicationLoadBalancer(
        scope,
        "Alb",
        load_balancer_name=config.prefix,
        vpc=network.vpc,
        internet_facing=True,
        vpc_subnets=network.public_subnets,  # P8: only subnets with an internet-gateway route
        security_group=network.alb_security_group,
        drop_invalid_header_fields=True,
        deletion_protection=config.is_prod,
        idle_timeout=Duration.seconds(120),  # overlay SSE heartbeats every 15 s
    )
    alb.log_access_logs(logs_bucket, prefix="alb")

    alb.add_listener(
        "Http",
        port=80,
        open=False,
        default_action=elbv2.ListenerAction.redirect(protocol="HTTPS", port="443", permanent=True),
    )
    blue, green = (_target_group(scope, name, config, network) for name in ("Blue", "Green"))
    https = alb.add_listener(
        "Https",
        port=443,
        open=False,
        protocol=elbv2.ApplicationProtocol.HTTPS,
        ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
        certificates=[elbv2.ListenerCertificate.from_arn(certificate.value_as_string)],
        default_action=elbv2.ListenerAction.forward([blue]),
    )
    # Prometheus metrics are scraped inside the VPC only: never answered from outside.
    elbv2.ApplicationListenerRule(
        scope,
        "BlockMetrics",
        listener=https,
        priority=1,
        conditions=[elbv2.ListenerCondition.path_patterns(METRICS_PATHS)],
        action=elbv2.ListenerAction.fixed_response(
            404,
            content_type="application/problem+json",
            message_body='{"type":"about:blank","title":"Not Found","status":404}',
        ),
    )
    web_acl = _web_acl(scope, config, key)
    wafv2.CfnWebACLAssociation(
        scope, "AlbWaf", resource_arn=alb.load_balancer_arn, web_acl_arn=web_acl.attr_arn
    )
    return LoadBalancer(alb, https, blue, green, web_acl)


def _target_group(
    scope: Construct, name: str, config: EnvConfig, network: NetworkStack
) -> elbv2.ApplicationTargetGroup:
    """Same port and /healthz as the api container (P4)."""
    return elbv2.ApplicationTargetGroup(
        scope,
        f"Api{name}",
        target_group_name=f"{config.prefix}-api-{name.lower()}",
        vpc=network.vpc,
        port=API_PORT,
        protocol=elbv2.ApplicationProtocol.HTTP,
        target_type=elbv2.TargetType.IP,
        deregistration_delay=Duration.seconds(30),
        health_check=elbv2.HealthCheck(
            path=HEALTH_PATH,
            port=str(API_PORT),
            healthy_http_codes="200",
            interval=Duration.seconds(15),
            timeout=Duration.seconds(5),
            healthy_threshold_count=2,
            unhealthy_threshold_count=3,
        ),
    )


def _managed(name: str, priority: int, overrides: list[str] | None = None) -> object:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule,
                        action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                    )
                    for rule in overrides or []
                ]
                or None,
            )
        ),
        visibility_config=_visibility(name),
    )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _web_acl(scope: Construct, config: EnvConfig, key: object) -> wafv2.CfnWebACL:
    rate = wafv2.CfnWebACL.RuleProperty(
        name="RatePerClient",
        priority=0,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                limit=config.waf_rate_limit_per_5min,
                evaluation_window_sec=300,
                # Behind CloudFront the source address is an edge; the viewer's is in the
                # header CloudFront's viewer-request function sets (edge.VIEWER_IP_HEADER).
                aggregate_key_type="FORWARDED_IP",
                forwarded_ip_config=wafv2.CfnWebACL.ForwardedIPConfigurationProperty(
                    header_name="X-Viewer-Ip", fallback_behavior="MATCH"
                ),
            )
        ),
        visibility_config=_visibility("RatePerClient"),
    )
    acl = wafv2.CfnWebACL(
        scope,
        "WebAcl",
        name=f"{config.prefix}-alb",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility(f"{config.prefix}-alb"),
        rules=[
            rate,
            # Fan-board posts reach 20,000 characters (~60 KB of Hangul): the 8 KB body rule
            # would block them, so it only counts; the app enforces its own body limit.
            _managed("AWSManagedRulesCommonRuleSet", 1, ["SizeRestrictions_BODY"]),
            _managed("AWSManagedRulesKnownBadInputsRuleSet", 2),
            _managed("AWSManagedRulesSQLiRuleSet", 3),
        ],
    )
    log_group = encrypted_log_group(scope, "WafLogs", config, "waf", key)  # type: ignore[arg-type]
    # WAF only delivers to groups whose name starts with aws-waf-logs-.
    log_group.node.default_child.add_property_override(  # type: ignore[union-attr]
        "LogGroupName", f"aws-waf-logs-{config.prefix}"
    )
    log_group.apply_removal_policy(
        RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY
    )
    logging = wafv2.CfnLoggingConfiguration(
        scope,
        "WafLogging",
        resource_arn=acl.attr_arn,
        log_destination_configs=[
            Stack.of(scope).format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"aws-waf-logs-{config.prefix}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        ],
    )
    logging.add_resource_dependency(log_group.node.default_child)  # type: ignore[arg-type]
    return acl
