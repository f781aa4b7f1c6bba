"""Each guard catches the failure it exists for: build a deliberately broken variant (a
small CDK stack, or a copy of a real environment with one thing changed) and expect the
pitfall id in the guard's report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from missionlink_infra.guards import TEMPLATE_GUARDS, Assembly
from missionlink_infra.guards.model import Resource

Broken = Callable[[str], Assembly]
Synth = Callable[[Callable[[Any], None]], Assembly]


def caught(pitfall: str, assembly: Assembly, needle: str = "") -> list[str]:
    problems = TEMPLATE_GUARDS[pitfall](assembly)
    assert problems, f"{pitfall} guard missed the broken variant"
    assert all(p.startswith(pitfall) or p.startswith("P2/P12") for p in problems), problems
    if needle:
        assert any(needle in p for p in problems), problems
    return problems


def one(assembly: Assembly, rtype: str, contains: str = "") -> Resource:
    found = [r for r in assembly.resources(rtype) if contains in r.logical_id]
    assert found, f"no {rtype} matching {contains!r}"
    return found[0]


def routes_via_nat(assembly: Assembly, subnet_group: str) -> list[Resource]:
    return [
        r
        for r in assembly.resources("AWS::EC2::Route")
        if subnet_group in r.logical_id and "NatGatewayId" in r.props
    ]


def drop(assembly: Assembly, resource: Resource) -> None:
    del assembly.templates[resource.stack]["Resources"][resource.logical_id]


# P1 -------------------------------------------------------------------------------------


def test_p1_service_relying_on_an_empty_default_capacity_strategy(broken: Broken) -> None:
    a = broken("dev")
    service = one(a, "AWS::ECS::Service", "Worker")
    del service.props["LaunchType"]
    caught("P1", a, "default capacity provider strategy is empty")


def test_p1_service_naming_a_capacity_provider_that_does_not_exist(synth_stack: Synth) -> None:
    def build(stack: Any) -> None:
        vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
        cluster = ecs.Cluster(stack, "Cluster", vpc=vpc)
        task = ecs.FargateTaskDefinition(stack, "Task", cpu=256, memory_limit_mib=512)
        task.add_container("app", image=ecs.ContainerImage.from_registry("repo/app:v1.0.0"))
        ecs.FargateService(
            stack,
            "Service",
            cluster=cluster,
            task_definition=task,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(capacity_provider="asg-nodes", weight=1)
            ],
        )

    caught("P1", synth_stack(build), "asg-nodes")


# P2 / P11 / P12 -------------------------------------------------------------------------


def test_p2_task_subnets_without_nat_or_endpoints(broken: Broken) -> None:
    a = broken("dev")
    for route in routes_via_nat(a, "app"):
        drop(a, route)
    problems = caught("P2", a, "ecr.dkr")
    assert any("secretsmanager" in p for p in problems)


def test_p12_endpoint_only_subnets_pass_with_the_full_set(broken: Broken) -> None:
    a = broken("staging")  # staging has the interface endpoints as well as a NAT
    for route in routes_via_nat(a, "app"):
        drop(a, route)
    assert TEMPLATE_GUARDS["P12"](a) == []


def test_p12_endpoint_only_subnets_missing_ecr_docker(broken: Broken) -> None:
    a = broken("staging")
    for route in routes_via_nat(a, "app"):
        drop(a, route)
    drop(a, one(a, "AWS::EC2::VPCEndpoint", "EcrDocker"))
    caught("P12", a, "*.ecr.dkr")


def test_p12_endpoints_need_private_dns(broken: Broken) -> None:
    a = broken("staging")
    for route in routes_via_nat(a, "app"):
        drop(a, route)
    one(a, "AWS::EC2::VPCEndpoint", "Logs").props["PrivateDnsEnabled"] = False
    caught("P12", a, "private DNS on the *.logs endpoint")


def test_p11_only_one_private_subnet_has_a_nat_route(broken: Broken) -> None:
    a = broken("dev")
    drop(a, routes_via_nat(a, "appSubnet2")[0])
    caught("P11", a, "differ in egress")


def test_p11_data_subnets_must_stay_isolated(broken: Broken) -> None:
    a = broken("dev")
    nat_route = routes_via_nat(a, "appSubnet1")[0]
    table = one(a, "AWS::EC2::RouteTable", "dataSubnet1")
    a.templates[nat_route.stack]["Resources"]["DataDefaultRoute"] = {
        "Type": "AWS::EC2::Route",
        "Properties": {**nat_route.props, "RouteTableId": {"Ref": table.logical_id}},
    }
    caught("P11", a, "data subnet")


# P3 -------------------------------------------------------------------------------------


def test_p3_task_memory_fargate_cannot_place(synth_stack: Synth) -> None:
    def build(stack: Any) -> None:
        task = ecs.FargateTaskDefinition(stack, "Task", cpu=256, memory_limit_mib=16384)
        task.add_container("app", image=ecs.ContainerImage.from_registry("repo/app:v1.0.0"))

    caught("P3", synth_stack(build), "256 CPU with 16384 MiB")


def test_p3_is_refused_before_synthesis() -> None:
    from missionlink_infra.config import TaskSize
    from missionlink_infra.tasks import check_fargate_size

    with pytest.raises(ValueError, match="P3"):
        check_fargate_size(TaskSize(cpu=512, memory_mib=512), "api")


# P4 -------------------------------------------------------------------------------------


def test_p4_target_group_port_differs_from_the_container(broken: Broken) -> None:
    a = broken("dev")
    one(a, "AWS::ElasticLoadBalancingV2::TargetGroup", "Blue").props["Port"] = 80
    caught("P4", a, "listens on 80")


def test_p4_green_target_group_checks_the_wrong_path(broken: Broken) -> None:
    a = broken("dev")
    one(a, "AWS::ElasticLoadBalancingV2::TargetGroup", "Green").props["HealthCheckPath"] = "/"
    caught("P4", a, "health-checks '/'")


def test_p4_container_does_not_define_the_port(broken: Broken) -> None:
    a = broken("dev")
    task = one(a, "AWS::ECS::TaskDefinition", "Api")
    task.props["ContainerDefinitions"][0]["PortMappings"][0]["ContainerPort"] = 8080
    caught("P4", a, "does not expose port 8000")


# P5 -------------------------------------------------------------------------------------


def test_p5_data_permission_on_the_execution_role(broken: Broken) -> None:
    a = broken("dev")
    policy = one(a, "AWS::IAM::Policy", "TaskExecutionRole")
    policy.props["PolicyDocument"]["Statement"].append(
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": "arn:aws:dynamodb:ap-northeast-2:111111111111:table/fans",
        }
    )
    caught("P5", a, "execution role")


def test_p5_no_s3_gateway_endpoint(broken: Broken) -> None:
    a = broken("dev")
    drop(a, one(a, "AWS::EC2::VPCEndpoint", "VpcS3"))
    caught("P5", a, "*.s3 gateway endpoint")


# P6 -------------------------------------------------------------------------------------


def test_p6_cloudfront_does_not_forward_preflights(broken: Broken) -> None:
    a = broken("dev")
    dist = one(a, "AWS::CloudFront::Distribution")
    for behavior in dist.props["DistributionConfig"]["CacheBehaviors"]:
        if behavior["PathPattern"] == "/api/*":
            behavior["AllowedMethods"] = ["GET", "HEAD"]
            del behavior["OriginRequestPolicyId"]
    problems = caught("P6", a, "OPTIONS")
    assert any("Access-Control-Request" in p for p in problems)


def test_p6_wildcard_cors_origins(broken: Broken) -> None:
    a = broken("prod")
    task = one(a, "AWS::ECS::TaskDefinition", "Api")
    for env in task.props["ContainerDefinitions"][0]["Environment"]:
        if env["Name"] == "MISSIONLINK_CORS_ORIGINS":
            env["Value"] = "*"
    caught("P6", a, "without explicit CORS origins")


# P7 -------------------------------------------------------------------------------------


def test_p7_github_role_trusting_every_repository(broken: Broken) -> None:
    a = broken("dev")
    role = one(a, "AWS::IAM::Role", "GitHubInfraDeploy")
    condition = role.props["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    del condition["StringEquals"]["token.actions.githubusercontent.com:sub"]
    condition["StringLike"] = {"token.actions.githubusercontent.com:sub": "repo:*"}
    caught("P7", a, "any repository")


def test_p7_long_lived_access_key(synth_stack: Synth) -> None:
    def build(stack: Any) -> None:
        user = iam.User(stack, "Deployer")
        iam.AccessKey(stack, "DeployerKey", user=user)

    caught("P7", synth_stack(build), "access key")


# P8 -------------------------------------------------------------------------------------


def test_p8_internet_facing_alb_in_private_subnets(synth_stack: Synth) -> None:
    def build(stack: Any) -> None:
        vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
        elbv2.ApplicationLoadBalancer(
            stack,
            "Alb",
            vpc=vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )

    caught("P8", synth_stack(build), "no internet-gateway route")


def test_p8_internet_facing_alb_in_public_subnets_passes(synth_stack: Synth) -> None:
    def build(stack: Any) -> None:
        vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
        elbv2.ApplicationLoadBalancer(stack, "Alb", vpc=vpc, internet_facing=True)

    assert TEMPLATE_GUARDS["P8"](synth_stack(build)) == []


# P9 -------------------------------------------------------------------------------------


def test_p9_bucket_policy_with_principal_star(synth_stack: Synth) -> None:
    def build(stack: Any) -> None:
        bucket = s3.Bucket(
            stack,
            "Site",
            block_public_access=s3.BlockPublicAccess(
                block_public_policy=False,
                restrict_public_buckets=False,
                block_public_acls=True,
                ignore_public_acls=True,
            ),
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects("*")],
            )
        )

    problems = caught("P9", synth_stack(build), "Principal '*'")
    assert any("does not block all public access" in p for p in problems)


def test_p9_cloudfront_read_without_source_arn(broken: Broken) -> None:
    a = broken("dev")
    policy = one(a, "AWS::S3::BucketPolicy", "Static")
    for statement in policy.props["PolicyDocument"]["Statement"]:
        statement.pop("Condition", None) if statement["Effect"] == "Allow" else None
    caught("P9", a, "AWS:SourceArn")


# P10 ------------------------------------------------------------------------------------


def step_policy(stack: Any, steps: list[dict[str, float]]) -> None:
    target = appscaling.ScalableTarget(
        stack,
        "Target",
        service_namespace=appscaling.ServiceNamespace.ECS,
        resource_id="service/cluster/api",
        scalable_dimension="ecs:service:DesiredCount",
        min_capacity=1,
        max_capacity=4,
    )
    appscaling.CfnScalingPolicy(
        stack,
        "Steps",
        policy_name="steps",
        policy_type="StepScaling",
        scaling_target_id=target.scalable_target_id,
        step_scaling_policy_configuration=appscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
            adjustment_type="ChangeInCapacity",
            step_adjustments=[
                appscaling.CfnScalingPolicy.StepAdjustmentProperty(
                    scaling_adjustment=int(s["change"]),
                    metric_interval_lower_bound=s.get("lower"),
                    metric_interval_upper_bound=s.get("upper"),
                )
                for s in steps
            ],
        ),
    )


def test_p10_step_policy_with_a_gap(synth_stack: Synth) -> None:
    problems = caught(
        "P10",
        synth_stack(
            lambda st: step_policy(
                st, [{"lower": 0, "upper": 10, "change": 1}, {"lower": 20, "change": 3}]
            )
        ),
        "gap",
    )
    assert any("10.0 and 20.0" in p for p in problems)


def test_p10_breach_just_over_the_threshold_has_no_step(synth_stack: Synth) -> None:
    caught(
        "P10",
        synth_stack(lambda st: step_policy(st, [{"lower": 10, "change": 2}])),
        "No step adjustment found",
    )


def test_p10_overlapping_and_capped_steps(synth_stack: Synth) -> None:
    problems = caught(
        "P10",
        synth_stack(
            lambda st: step_policy(
                st,
                [{"lower": 0, "upper": 30, "change": 1}, {"lower": 20, "upper": 50, "change": 2}],
            )
        ),
    )
    assert any("overlap" in p for p in problems) and any("beyond 50" in p for p in problems)


# P13 ------------------------------------------------------------------------------------


def test_p13_empty_tags_in_a_task_definition(broken: Broken) -> None:
    a = broken("prod")
    one(a, "AWS::ECS::TaskDefinition", "Migrate").props["Tags"] = []
    caught("P13", a, "/Tags")


# P14 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", ["repo/app:latest", "repo/app", "repo/app:", "repo/app:main"])
def test_p14_movable_image_references(broken: Broken, image: str) -> None:
    a = broken("dev")
    one(a, "AWS::ECS::TaskDefinition", "Api").props["ContainerDefinitions"][0]["Image"] = image
    caught("P14", a, "not an immutable tag or digest")


@pytest.mark.parametrize("tag", ["", "latest", "main", "v1.2"])
def test_p14_app_refuses_a_movable_tag_before_synthesis(tag: str) -> None:
    from missionlink_infra.tasks import check_image_tag

    with pytest.raises(ValueError, match="P14"):
        check_image_tag(tag)


# P15 ------------------------------------------------------------------------------------


def test_p15_api_deployed_in_place(broken: Broken) -> None:
    a = broken("prod")
    one(a, "AWS::ECS::Service", "Api").props["DeploymentController"] = {"Type": "ECS"}
    caught("P15", a, "not blue/green")


def test_p15_no_rollback_on_alarm(broken: Broken) -> None:
    a = broken("staging")
    group = one(a, "AWS::CodeDeploy::DeploymentGroup")
    group.props["AutoRollbackConfiguration"]["Events"] = ["DEPLOYMENT_FAILURE"]
    caught("P15", a, "on alarm")


def test_p15_autoscaling_set_by_hand(broken: Broken) -> None:
    a = broken("dev")
    for target in list(a.resources("AWS::ApplicationAutoScaling::ScalableTarget")):
        drop(a, target)
    caught("P15", a, "no autoscaling in code")


# P16 ------------------------------------------------------------------------------------


def test_p16_password_as_a_plain_environment_value(synth_stack: Synth) -> None:
    def build(stack: Any) -> None:
        task = ecs.FargateTaskDefinition(stack, "Task", cpu=256, memory_limit_mib=512)
        task.add_container(
            "app",
            image=ecs.ContainerImage.from_registry("repo/app:v1.0.0"),
            environment={
                "MISSIONLINK_DATABASE_PASSWORD": "hunter2hunter2",
                "DB_HOST": "core.cluster-abc.ap-northeast-2.rds",
            },
        )

    caught("P16", synth_stack(build), "MISSIONLINK_DATABASE_PASSWORD")


def test_p16_database_endpoint_in_plain_environment(broken: Broken) -> None:
    a = broken("dev")
    task = one(a, "AWS::ECS::TaskDefinition", "Worker")
    task.props["ContainerDefinitions"][0]["Environment"].append(
        {"Name": "MISSIONLINK_DB_HOST", "Value": {"Fn::GetAtt": ["CoreDb", "Endpoint.Address"]}}
    )
    caught("P16", a, "MISSIONLINK_DB_HOST")


def test_p16_secretstr_setting_in_plain_environment(broken: Broken) -> None:
    a = broken("dev")
    task = one(a, "AWS::ECS::TaskDefinition", "Worker")
    task.props["ContainerDefinitions"][0]["Environment"].append(
        {"Name": "MISSIONLINK_PAYOUT_ACCOUNT_KEYS", "Value": "k1:AAAA"}
    )
    caught("P16", a, "sets MISSIONLINK_PAYOUT_ACCOUNT_KEYS as a plain environment value")


# P17 ------------------------------------------------------------------------------------


def test_p17_admin_policy_and_star_actions(synth_stack: Synth) -> None:
    def build(stack: Any) -> None:
        role = iam.Role(
            stack,
            "Ops",
            assumed_by=iam.AccountRootPrincipal(),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AdministratorAccess")
            ],
        )
        role.add_to_policy(iam.PolicyStatement(actions=["*"], resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=["*"]))

    problems = caught("P17", synth_stack(build), "AdministratorAccess")
    assert any("wildcard action '*'" in p for p in problems)
    assert any("'s3:*'" in p for p in problems)
    assert any("['dynamodb:PutItem'] on every resource" in p for p in problems)
