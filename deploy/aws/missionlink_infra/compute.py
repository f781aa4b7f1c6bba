"""ECS Fargate services behind the ALB, blue/green through CodeDeploy, autoscaling."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from missionlink_infra.config import APP_NAME, EnvConfig
from missionlink_infra.data import DataStack
from missionlink_infra.keys import encrypted_log_group, platform_key
from missionlink_infra.loadbalancer import build_load_balancer
from missionlink_infra.mail import build_mail
from missionlink_infra.network import NetworkStack
from missionlink_infra.operations import Operations
from missionlink_infra.suppressions import (
    skip_cfn_lint,
    skip_checkov,
    skip_nag,
    skip_nag_wildcards,
)
from missionlink_infra.tasks import TaskFactory, check_image_tag

API_REQUESTS_PER_TASK = 400  # per minute, at the target-tracking set point


class AppStack(Stack):
    """Everything that runs the image: cluster, services, load balancer, alarms."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: EnvConfig,
        network: NetworkStack,
        data: DataStack,
        image_tag: str,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self.key = platform_key(self, "AppKey", config, "app")
        self.logs_bucket = self._logs_bucket()
        repository = ecr.Repository.from_repository_name(self, "Images", APP_NAME)
        image = ecs.ContainerImage.from_ecr_repository(repository, tag=check_image_tag(image_tag))

        exec_logs = encrypted_log_group(self, "ExecLogs", config, "ecs-exec", self.key)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=config.prefix,
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENHANCED,
            enable_fargate_capacity_providers=True,
            execute_command_configuration=ecs.ExecuteCommandConfiguration(
                kms_key=self.key,
                logging=ecs.ExecuteCommandLogging.OVERRIDE,
                log_configuration=ecs.ExecuteCommandLogConfiguration(
                    cloud_watch_log_group=exec_logs, cloud_watch_encryption_enabled=True
                ),
            ),
        )
        self.tasks = TaskFactory(
            self,
            config=config,
            data=data,
            image=image,
            key=self.key,
            vpc_cidr=config.vpc_cidr,
        ).build()
        exec_reason = (
            "ECS Exec (SSM Session Manager) opens its channels with ssmmessages "
            "actions that take no resource, and writes session logs to streams of "
            "its own log group."
        )
        exec_streams = (
            f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:"
            + exec_logs.log_group_name
            + ":*"
        )
        for task in (self.tasks.api, self.tasks.worker):
            skip_nag_wildcards(task.task_role, ["*", exec_streams], exec_reason)
        build_mail(self, config=config)
        self.lb = build_load_balancer(
            self, config=config, network=network, logs_bucket=self.logs_bucket, key=self.key
        )
        self.api_service = self._service(
            "Api", "api", self.tasks.api, network, config.api.min_count, code_deploy=True
        )
        self.api_service.attach_to_application_target_group(self.lb.blue)
        self.worker_service = self._service(
            "Worker",
            "worker",
            self.tasks.worker,
            network,
            config.worker.min_count,
            code_deploy=False,
        )
        self.ops = Operations(
            self,
            "Operations",
            config=config,
            key=self.key,
            lb=self.lb,
            api=self.api_service,
            worker=self.worker_service,
        )
        self._blue_green()
        self._worker_rollback()
        self._scale_api()
        self._scale_worker()

    def _logs_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=f"{self.config.prefix}-access-logs-{self.account}",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(max(self.config.log_retention_days, 30)),
                    noncurrent_version_expiration=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        reason = (
            "This bucket is the access-log destination itself; ELB and CloudFront log "
            "delivery only support SSE-S3."
        )
        skip_nag(bucket, "AwsSolutions-S1", reason)
        skip_checkov(bucket, "CKV_AWS_18", reason)
        # CloudFront standard logging still writes through the log-delivery ACL.
        skip_cfn_lint(bucket, "W3045")
        return bucket

    def _service(
        self,
        cid: str,
        name: str,
        task: ecs.FargateTaskDefinition,
        network: NetworkStack,
        count: int,
        *,
        code_deploy: bool,
    ) -> ecs.FargateService:
        service = ecs.FargateService(
            self,
            f"{cid}Service",
            service_name=f"{self.config.prefix}-{name}",
            cluster=self.cluster,
            task_definition=task,
            desired_count=count,
            vpc_subnets=network.app_subnets,
            security_groups=[network.app_security_group],
            assign_public_ip=False,
            enable_execute_command=True,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            min_healthy_percent=100,
            max_healthy_percent=200,
            health_check_grace_period=Duration.seconds(60) if code_deploy else None,
            deployment_controller=ecs.DeploymentController(
                type=ecs.DeploymentControllerType.CODE_DEPLOY
                if code_deploy
                else ecs.DeploymentControllerType.ECS
            ),
            circuit_breaker=None
            if code_deploy
            else ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
        )
        cfn = service.node.default_child
        # The service names the family, not a revision: infrastructure deploys register new
        # revisions but never call UpdateService on it; release.yml rolls them out (CodeDeploy
        # for the api, ECS rolling with alarms for the worker).
        cfn.add_property_override("TaskDefinition", task.family)  # type: ignore[union-attr]
        cfn.add_resource_dependency(task.node.default_child)  # type: ignore[union-attr,arg-type]
        return service

    def _blue_green(self) -> None:
        """Blue/green for the api with automatic rollback on failure or alarm (P15)."""
        application = codedeploy.EcsApplication(
            self, "DeployApplication", application_name=f"{self.config.prefix}-api"
        )
        self.deployment_group = codedeploy.EcsDeploymentGroup(
            self,
            "ApiDeploymentGroup",
            application=application,
            deployment_group_name=f"{self.config.prefix}-api",
            service=self.api_service,
            blue_green_deployment_config=codedeploy.EcsBlueGreenDeploymentConfig(
                blue_target_group=self.lb.blue,
                green_target_group=self.lb.green,
                listener=self.lb.https,
                termination_wait_time=Duration.minutes(15 if self.config.is_prod else 5),
            ),
            deployment_config=(
                codedeploy.EcsDeploymentConfig.CANARY_10_PERCENT_5_MINUTES
                if self.config.is_prod
                else codedeploy.EcsDeploymentConfig.ALL_AT_ONCE
            ),
            alarms=self.ops.deployment_alarms,
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        skip_nag(
            self.deployment_group,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AWSCodeDeployRoleForECS]",
            "AWS's service-role policy for CodeDeploy ECS blue/green, maintained by AWS as "
            "the service's needs change.",
        )

    def _worker_rollback(self) -> None:
        # ECS checks that the alarms exist when it creates the service.
        self.worker_service.node.add_dependency(self.ops.outbox_age, self.ops.worker_cpu)
        cfn = self.worker_service.node.default_child
        cfn.add_property_override(  # type: ignore[union-attr]
            "DeploymentConfiguration.Alarms",
            {
                "AlarmNames": self.ops.worker_alarm_names,
                "Enable": True,
                "Rollback": True,
            },
        )

    def _scale_api(self) -> None:
        cfg = self.config.api
        scaling = self.api_service.auto_scale_task_count(
            min_capacity=cfg.min_count, max_capacity=cfg.max_count
        )
        scaling.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=60,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )
        # ALB requests per running task: the load balancer's count divided by the service's
        # task count, so it keeps working after CodeDeploy swaps blue and green.
        target = scaling.node.find_child("Target")
        appscaling.CfnScalingPolicy(
            self,
            "ApiRequestsPerTask",
            policy_name=f"{self.config.prefix}-api-requests-per-task",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.node.default_child.ref,  # type: ignore[union-attr]
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=API_REQUESTS_PER_TASK,
                scale_in_cooldown=300,
                scale_out_cooldown=60,
                customized_metric_specification=appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metrics=[
                        _metric_stat(
                            "requests",
                            "AWS/ApplicationELB",
                            "RequestCount",
                            "Sum",
                            {"LoadBalancer": self.lb.alb.load_balancer_full_name},
                        ),
                        _metric_stat(
                            "tasks",
                            "ECS/ContainerInsights",
                            "RunningTaskCount",
                            "Average",
                            {
                                "ClusterName": self.cluster.cluster_name,
                                "ServiceName": self.api_service.service_name,
                            },
                        ),
                        appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                            id="perTask",
                            expression="requests / MAX([tasks, 1])",
                            label="ALB requests per api task",
                            return_data=True,
                        ),
                    ]
                ),
            ),
        )

    def _scale_worker(self) -> None:
        cfg = self.config.worker
        scaling = self.worker_service.auto_scale_task_count(
            min_capacity=cfg.min_count, max_capacity=cfg.max_count
        )
        scaling.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=60,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )
        # Steps on the outbox backlog; CDK turns them into contiguous intervals (P10).
        scaling.scale_on_metric(
            "OutboxAge",
            metric=self.ops.outbox_age_metric(Duration.minutes(1)),
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            scaling_steps=[
                appscaling.ScalingInterval(upper=5, change=-1),
                appscaling.ScalingInterval(lower=15, change=+1),
                appscaling.ScalingInterval(lower=60, change=+2),
                appscaling.ScalingInterval(lower=300, change=+4),
            ],
            cooldown=Duration.minutes(2),
            evaluation_periods=2,
        )


def _metric_stat(
    qid: str, namespace: str, name: str, stat: str, dimensions: dict[str, str]
) -> appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty:
    return appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
        id=qid,
        return_data=False,
        metric_stat=appscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
            stat=stat,
            metric=appscaling.CfnScalingPolicy.TargetTrackingMetricProperty(
                namespace=namespace,
                metric_name=name,
                dimensions=[
                    appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                        name=k, value=v
                    )
                    for k, v in dimensions.items()
                ],
            ),
        ),
    )
