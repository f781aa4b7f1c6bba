"""What each environment's stacks contain, checked with aws_cdk.assertions."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Match, Template
from missionlink_infra.config import ENVIRONMENTS, OUTBOX_METRIC

from tests.infra.conftest import IMAGE_TAG

ENVS = list(ENVIRONMENTS)


def stack(assemblies: dict[str, Any], env: str, part: str) -> Template:
    templates = assemblies[env].templates
    name = next(n for n in templates if n.startswith(env) and n[len(env) :].startswith(part))
    return Template.from_json(templates[name])


def everything(assemblies: dict[str, Any], env: str) -> str:
    return json.dumps(assemblies[env].templates)


@pytest.mark.parametrize(("env", "nats"), [("dev", 1), ("staging", 1), ("prod", 2)])
def test_nat_gateways_per_environment(assemblies: dict[str, Any], env: str, nats: int) -> None:
    network = stack(assemblies, env, "Network")
    network.resource_count_is("AWS::EC2::NatGateway", nats)
    network.resource_count_is("AWS::EC2::FlowLog", 1)
    network.resource_count_is("AWS::EC2::Subnet", 6)  # public, app, data x 2 AZs


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_interface_endpoints_with_private_dns(assemblies: dict[str, Any], env: str) -> None:
    endpoints = [
        e.props
        for e in assemblies[env].resources("AWS::EC2::VPCEndpoint")
        if e.props.get("VpcEndpointType") == "Interface"
    ]
    flat = {assemblies[env].flat("", e["ServiceName"]) for e in endpoints}
    for service in (".ecr.api", ".ecr.dkr", ".logs", ".secretsmanager", ".sts", ".ssmmessages"):
        assert any(name.endswith(service) for name in flat), (service, flat)
    assert all(e["PrivateDnsEnabled"] is True for e in endpoints)


@pytest.mark.parametrize("env", ENVS)
def test_https_only_alb_with_metrics_closed_and_waf(assemblies: dict[str, Any], env: str) -> None:
    app = stack(assemblies, env, "App")
    app.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "DefaultActions": [
                Match.object_like(
                    {
                        "Type": "redirect",
                        "RedirectConfig": Match.object_like(
                            {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}
                        ),
                    }
                )
            ],
        },
    )
    app.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 443,
            "Protocol": "HTTPS",
            "Certificates": [{"CertificateArn": {"Ref": "AlbCertificateArn"}}],
        },
    )
    app.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        {
            "Priority": 1,
            "Conditions": [
                Match.object_like({"PathPatternConfig": {"Values": ["/metrics", "/metrics/*"]}})
            ],
            "Actions": [
                Match.object_like(
                    {
                        "Type": "fixed-response",
                        "FixedResponseConfig": Match.object_like({"StatusCode": "404"}),
                    }
                )
            ],
        },
    )
    app.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Scope": "REGIONAL",
            "Rules": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Name": "RatePerClient",
                            "Statement": {
                                "RateBasedStatement": Match.object_like(
                                    {"AggregateKeyType": "FORWARDED_IP"}
                                )
                            },
                        }
                    ),
                    Match.object_like({"Name": "AWSManagedRulesCommonRuleSet"}),
                    Match.object_like({"Name": "AWSManagedRulesKnownBadInputsRuleSet"}),
                ]
            ),
        },
    )
    app.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    app.resource_count_is("AWS::WAFv2::LoggingConfiguration", 1)


@pytest.mark.parametrize("env", ENVS)
def test_two_encrypted_aurora_clusters_with_backups(assemblies: dict[str, Any], env: str) -> None:
    data = stack(assemblies, env, "Data")
    cfg = ENVIRONMENTS[env]
    data.resource_count_is("AWS::RDS::DBCluster", 2)
    for name, size in (("core", cfg.core_db), ("identity", cfg.identity_db)):
        data.has_resource_properties(
            "AWS::RDS::DBCluster",
            {
                "DBClusterIdentifier": f"{cfg.prefix}-{name}",
                "Engine": "aurora-postgresql",
                "StorageEncrypted": True,
                "DeletionProtection": size.deletion_protection,
                "BackupRetentionPeriod": size.backup_retention_days,
                "ServerlessV2ScalingConfiguration": {
                    "MinCapacity": size.min_acu,
                    "MaxCapacity": size.max_acu,
                },
            },
        )
    instances = 2 + cfg.core_db.readers + cfg.identity_db.readers
    data.resource_count_is("AWS::RDS::DBInstance", instances)
    data.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "TransitEncryptionEnabled": True,
            "AtRestEncryptionEnabled": True,
            "MultiAZEnabled": cfg.cache.replicas > 0,
        },
    )


def test_prod_spreads_databases_and_broker_over_two_zones(assemblies: dict[str, Any]) -> None:
    data = stack(assemblies, "prod", "Data")
    data.resource_count_is("AWS::RDS::DBInstance", 4)
    data.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {"NumCacheClusters": 2, "AutomaticFailoverEnabled": True},
    )
    data.has_resource("AWS::RDS::DBCluster", {"DeletionPolicy": "Snapshot"})


@pytest.mark.parametrize("env", ENVS)
def test_cloudfront_routes_static_to_s3_and_the_rest_to_the_alb(
    assemblies: dict[str, Any], env: str
) -> None:
    edge = stack(assemblies, env, "Edge")
    edge.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    dist = json.dumps(edge.find_resources("AWS::CloudFront::Distribution"))
    for path in ('"/static/*"', '"/api/*"', '"/overlay/*"'):
        assert path in dist
    assert ENVIRONMENTS[env].origin_domain_name in dist
    assert '"ViewerProtocolPolicy": "redirect-to-https"' in dist


@pytest.mark.parametrize("env", ENVS)
def test_every_log_group_has_retention_and_a_key(assemblies: dict[str, Any], env: str) -> None:
    for resource in assemblies[env].resources("AWS::Logs::LogGroup"):
        assert resource.props.get("RetentionInDays"), f"{resource} keeps logs forever"
        assert resource.props.get("KmsKeyId"), f"{resource} is not encrypted with our key"


@pytest.mark.parametrize("env", ENVS)
def test_alarms_reach_slack_through_sns_and_the_notifier(
    assemblies: dict[str, Any], env: str
) -> None:
    app = stack(assemblies, env, "App")
    prefix = ENVIRONMENTS[env].prefix
    for alarm in (
        "api5xx-ratio",
        "api-p99-latency",
        "api-unhealthy-hosts-blue",
        "api-unhealthy-hosts-green",
        "api-cpu",
        "worker-cpu",
        "outbox-age",
    ):
        app.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmName": f"{prefix}-{alarm}",
                "AlarmActions": Match.any_value(),
                "OKActions": Match.any_value(),
            },
        )
    app.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": OUTBOX_METRIC, "Namespace": "MissionLink"}
    )
    app.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "lambda"})
    app.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Handler": "handler.handler",
            "Environment": {
                "Variables": {
                    "SLACK_WEBHOOK_SECRET_ARN": Match.any_value(),
                    "MISSIONLINK_ENVIRONMENT": env,
                }
            },
        },
    )
    app.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    assert "hooks.slack.com" not in everything(assemblies, env)


@pytest.mark.parametrize("env", ENVS)
def test_operators_use_session_manager_not_bastions(assemblies: dict[str, Any], env: str) -> None:
    for forbidden in ("AWS::EC2::Instance", "AWS::EC2::KeyPair", "AWS::EC2::ClientVpnEndpoint"):
        assert not list(assemblies[env].resources(forbidden)), forbidden
    app = stack(assemblies, env, "App")
    app.has_resource_properties("AWS::ECS::Service", {"EnableExecuteCommand": True})
    app.has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "Configuration": {
                "ExecuteCommandConfiguration": Match.object_like({"Logging": "OVERRIDE"})
            }
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_one_image_three_commands(assemblies: dict[str, Any], env: str) -> None:
    commands = {}
    for task in assemblies[env].resources("AWS::ECS::TaskDefinition"):
        app_container = task.props["ContainerDefinitions"][0]
        commands[task.props["Family"]] = app_container["Command"]
        assert IMAGE_TAG in assemblies[env].flat(task.stack, app_container["Image"]) or (
            "missionlink:" in json.dumps(app_container["Image"])
        )
        assert app_container["ReadonlyRootFilesystem"] is True
    prefix = ENVIRONMENTS[env].prefix
    assert commands == {
        f"{prefix}-api": ["serve", "--host", "0.0.0.0", "--port", "8000"],
        f"{prefix}-worker": ["worker"],
        f"{prefix}-migrate": ["migrate"],
    }


PAYMENT_SECRETS = {
    # variable: (secret name after the prefix, JSON key or "")
    "MISSIONLINK_PORTONE_API_SECRET": ("portone", "api-secret"),
    "MISSIONLINK_PORTONE_WEBHOOK_SECRET": ("portone", "webhook-secret"),
    "MISSIONLINK_STRIPE_SECRET_KEY": ("stripe", "secret-key"),
    "MISSIONLINK_STRIPE_WEBHOOK_SECRET": ("stripe", "webhook-secret"),
    "MISSIONLINK_PAYOUT_ACCOUNT_KEYS": ("payout-account-keys", ""),
}


@pytest.mark.parametrize("env", ENVS)
def test_payment_and_payout_secrets_reach_every_task_as_secrets(
    assemblies: dict[str, Any], env: str
) -> None:
    a = assemblies[env]
    prefix = ENVIRONMENTS[env].prefix
    arns = {}
    for secret in a.resources("AWS::SecretsManager::Secret"):
        name = secret.props.get("Name")
        if name in {f"{prefix}/{n}" for n, _ in PAYMENT_SECRETS.values()}:
            arns[name] = secret
    assert len(arns) == 3, sorted(arns)
    for task in a.resources("AWS::ECS::TaskDefinition"):
        app = task.props["ContainerDefinitions"][0]
        plain = {e["Name"] for e in app.get("Environment", [])}
        secrets = {s["Name"]: s["ValueFrom"] for s in app.get("Secrets", [])}
        for variable, (name, key) in PAYMENT_SECRETS.items():
            assert variable not in plain, (task, variable)
            assert variable in secrets, (task, variable)
            refs = a.references(task.stack, secrets[variable])
            assert [r.logical_id for r in refs] == [arns[f"{prefix}/{name}"].logical_id], (
                task, variable, secrets[variable])
            value_from = a.flat(task.stack, secrets[variable])
            assert value_from.endswith(f":{key}::") if key else not value_from.endswith("::")


@pytest.mark.parametrize("env", ENVS)
def test_worker_publishes_the_outbox_age(assemblies: dict[str, Any], env: str) -> None:
    worker = next(
        t
        for t in assemblies[env].resources("AWS::ECS::TaskDefinition")
        if t.props["Family"].endswith("-worker")
    )
    collector = next(c for c in worker.props["ContainerDefinitions"] if c["Name"] == "collector")
    text = json.dumps(collector)
    assert OUTBOX_METRIC in text and "127.0.0.1:9100" in text and "awsemf" in text


@pytest.mark.parametrize("env", ENVS)
def test_release_facts_and_roles(assemblies: dict[str, Any], env: str) -> None:
    release = stack(assemblies, env, "Release")
    release.has_resource_properties("AWS::SSM::Parameter", {"Name": f"/missionlink/{env}/release"})
    release.has_resource_properties(
        "AWS::IAM::Role", {"RoleName": f"missionlink-{env}-github-release"}
    )
    delivery = stack(assemblies, env, "Delivery")
    delivery.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "ImageTagMutability": "IMMUTABLE",
            "ImageScanningConfiguration": {"ScanOnPush": True},
        },
    )
    delivery.has_resource_properties(
        "AWS::IAM::OIDCProvider",
        {
            "Url": "https://token.actions.githubusercontent.com",
            "ClientIdList": ["sts.amazonaws.com"],
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_waf_rate_limit_keys_on_the_header_cloudfront_sets(
    assemblies: dict[str, Any], env: str
) -> None:
    from missionlink_infra.edge import VIEWER_IP_HEADER

    edge = stack(assemblies, env, "Edge")
    edge.has_resource_properties(
        "AWS::CloudFront::Function",
        {
            "FunctionCode": Match.string_like_regexp(
                f'"{VIEWER_IP_HEADER}"\\] = {{ value: event.viewer.ip'
            )
        },
    )
    dist = json.dumps(edge.find_resources("AWS::CloudFront::Distribution"))
    assert dist.count('"EventType": "viewer-request"') == 3  # pages, /api/*, /overlay/*
    app = stack(assemblies, env, "App")
    app.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Rules": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Statement": {
                                "RateBasedStatement": Match.object_like(
                                    {
                                        "ForwardedIPConfig": {
                                            "HeaderName": "X-Viewer-Ip",
                                            "FallbackBehavior": "MATCH",
                                        },
                                    }
                                )
                            }
                        }
                    )
                ]
            )
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_viewer_address_header_is_trusted_only_because_the_alb_admits_only_cloudfront(
    assemblies: dict[str, Any], env: str
) -> None:
    """The app believes X-Viewer-Ip (CLIENT_IP_HEADER) from inside the VPC; that is safe only
    while the load balancer takes connections from CloudFront's origin-facing list alone."""
    from missionlink_infra.config import CLOUDFRONT_PREFIX_LIST

    for template in assemblies[env].templates.values():
        resources = template.get("Resources", {})
        albs = [
            name for name, r in resources.items()
            if r["Type"] == "AWS::EC2::SecurityGroup"
            and "load balancer" in str(r["Properties"].get("GroupDescription", ""))
        ]
        rules = [
            r["Properties"] for r in resources.values()
            if r["Type"] == "AWS::EC2::SecurityGroupIngress"
            and r["Properties"].get("GroupId") in [{"Fn::GetAtt": [a, "GroupId"]} for a in albs]
        ]
        rules += [rule for a in albs
                  for rule in resources[a]["Properties"].get("SecurityGroupIngress", [])]
        if albs:
            break
    assert albs and rules, "no load balancer security group with ingress rules found"
    for rule in rules:
        assert rule.get("SourcePrefixListId") == CLOUDFRONT_PREFIX_LIST, rule
        assert "CidrIp" not in rule and "CidrIpv6" not in rule, rule
    assert '"MISSIONLINK_CLIENT_IP_HEADER"' in everything(assemblies, env)


@pytest.mark.parametrize("env", ENVS)
def test_tasks_require_tls_to_the_mail_relay(assemblies: dict[str, Any], env: str) -> None:
    # ENV=prod refuses SMTP_TLS=auto (the default): a task without it would not start.
    for task in assemblies[env].resources("AWS::ECS::TaskDefinition"):
        environment = {
            e["Name"]: e["Value"] for e in task.props["ContainerDefinitions"][0]["Environment"]
        }
        assert environment["MISSIONLINK_SMTP_TLS"] == "starttls", task.props["Family"]
