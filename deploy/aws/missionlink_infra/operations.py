"""Alarms -> SNS -> the Slack notifier Lambda, and the environment's dashboard."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as sm
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from missionlink_infra.config import METRICS_NAMESPACE, OUTBOX_METRIC, EnvConfig
from missionlink_infra.keys import encrypted_log_group
from missionlink_infra.loadbalancer import LoadBalancer
from missionlink_infra.suppressions import skip_cfn_lint, skip_checkov, skip_nag

NOTIFIER_SOURCE = Path(__file__).resolve().parent.parent / "lambda" / "slack_notifier"


class Operations(Construct):
    """Everything an on-call engineer sees: alarms, Slack messages, one dashboard."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: EnvConfig,
        key: kms.IKey,
        lb: LoadBalancer,
        api: ecs.FargateService,
        worker: ecs.FargateService,
    ) -> None:
        super().__init__(scope, cid)
        self.config = config
        self.lb = lb
        self.topic = sns.Topic(
            self,
            "Alarms",
            topic_name=f"{config.prefix}-alarms",
            master_key=key,
            enforce_ssl=True,
        )
        self.notifier = self._notifier(key)
        self.topic.add_subscription(subscriptions.LambdaSubscription(self.notifier))

        alb = lb.alb.metrics
        self.api_5xx = self._alarm(
            "Api5xxRatio",
            cw.MathExpression(
                expression="IF(requests > 0, 100 * (target5xx + elb5xx) / requests, 0)",
                using_metrics={
                    "requests": alb.request_count(period=Duration.minutes(1)),
                    "target5xx": alb.http_code_target(
                        code=elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=Duration.minutes(1)
                    ),
                    "elb5xx": alb.http_code_elb(
                        code=elbv2.HttpCodeElb.ELB_5XX_COUNT, period=Duration.minutes(1)
                    ),
                },
                label="5xx responses, % of requests",
                period=Duration.minutes(1),
            ),
            threshold=config.alarm_5xx_ratio_percent,
            periods=3,
            description="Share of 5xx answers from the api (load balancer and targets)",
        )
        self.api_latency = self._alarm(
            "ApiP99Latency",
            alb.target_response_time(statistic="p99", period=Duration.minutes(1)),
            threshold=config.alarm_p99_latency_seconds,
            periods=5,
            description="p99 latency of the api behind the load balancer (seconds)",
        )
        self.unhealthy = [
            self._alarm(
                f"ApiUnhealthyHosts{name}",
                cw.Metric(
                    namespace="AWS/ApplicationELB",
                    metric_name="UnHealthyHostCount",
                    dimensions_map={
                        "LoadBalancer": lb.alb.load_balancer_full_name,
                        "TargetGroup": tg.target_group_full_name,
                    },
                    statistic="Maximum",
                    period=Duration.minutes(1),
                ),
                threshold=1,
                periods=2,
                comparison=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                description=f"Unhealthy api targets in the {name.lower()} target group",
            )
            for name, tg in (("Blue", lb.blue), ("Green", lb.green))
        ]
        self.api_cpu = self._alarm(
            "ApiCpu",
            api.metric_cpu_utilization(period=Duration.minutes(1)),
            threshold=config.alarm_cpu_percent,
            periods=5,
            description="api CPU (%)",
        )
        # Literal dimensions: the worker service lists this alarm for rollback, so the
        # alarm must not depend on the service (it would be a cycle).
        self.worker_cpu = self._alarm(
            "WorkerCpu",
            cw.Metric(
                namespace="AWS/ECS",
                metric_name="CPUUtilization",
                dimensions_map={
                    "ClusterName": config.prefix,
                    "ServiceName": f"{config.prefix}-worker",
                },
                statistic="Average",
                period=Duration.minutes(1),
            ),
            threshold=config.alarm_cpu_percent,
            periods=5,
            description="worker CPU (%)",
        )
        self.outbox_age = self._alarm(
            "OutboxAge",
            self.outbox_age_metric(Duration.minutes(1)),
            threshold=config.alarm_outbox_age_seconds,
            periods=3,
            description="Age of the oldest unprocessed outbox event (seconds)",
        )
        self._dashboard(api, worker)

    @property
    def deployment_alarms(self) -> list[cw.IAlarm]:
        """Alarms that stop a blue/green deployment and roll it back."""
        return [self.api_5xx, self.api_latency, *self.unhealthy]

    @property
    def worker_alarm_names(self) -> list[str]:
        """Literal names: the alarms' own Refs would make the service depend on them, and
        they already depend on the service through their dimensions."""
        return [self.alarm_name("OutboxAge"), self.alarm_name("WorkerCpu")]

    def alarm_name(self, cid: str) -> str:
        return f"{self.config.prefix}-{_kebab(cid)}"

    def outbox_age_metric(self, period: Duration) -> cw.Metric:
        return cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=OUTBOX_METRIC,
            dimensions_map={"environment": self.config.name},
            statistic="Maximum",
            period=period,
        )

    def _alarm(
        self,
        cid: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        periods: int,
        description: str,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            cid,
            alarm_name=self.alarm_name(cid),
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            # No data means no traffic (or a worker that has nothing to report), not a fault.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        return alarm

    def _notifier(self, key: kms.IKey) -> lambda_.Function:
        config = self.config
        webhook = sm.Secret(
            self,
            "SlackWebhook",
            secret_name=f"{config.prefix}/slack-webhook-url",
            description="Slack incoming-webhook URL for alarms (set by an operator)",
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        reason = "Issued by Slack; replaced by an operator when Slack rotates it."
        skip_nag(webhook, "AwsSolutions-SMG4", reason)
        log_group = encrypted_log_group(self, "NotifierLogs", config, "slack-notifier", key)
        role = iam.Role(
            self,
            "NotifierRole",
            role_name=f"{config.prefix}-slack-notifier",
            description="Slack notifier: read the webhook secret, write its own logs",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        log_group.grant(role, "logs:CreateLogStream", "logs:PutLogEvents")
        webhook.grant_read(role)
        dead_letters = sqs.Queue(
            self,
            "NotifierDeadLetters",
            queue_name=f"{config.prefix}-slack-notifier-dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        # The function gets sqs:SendMessage for its dead-letter queue; SSE-KMS also needs
        # these two on the queue's key.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]
            )
        )
        function = lambda_.Function(
            self,
            "Notifier",
            function_name=f"{config.prefix}-slack-notifier",
            description="Turns CloudWatch alarm messages from SNS into Slack messages",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(NOTIFIER_SOURCE), exclude=["__pycache__", "*.pyc"]),
            role=role,
            timeout=Duration.seconds(10),
            memory_size=128,
            reserved_concurrent_executions=2,
            log_group=log_group,
            dead_letter_queue=dead_letters,
            environment={
                "SLACK_WEBHOOK_SECRET_ARN": webhook.secret_arn,
                "MISSIONLINK_ENVIRONMENT": config.name,
            },
            environment_encryption=key,
        )
        reason = (
            "Reaches only Slack's public webhook endpoint and Secrets Manager; it "
            "touches no private resource, so it runs outside the VPC."
        )
        skip_checkov(function, "CKV_AWS_117", reason)
        skip_cfn_lint(function, "W3005")  # CDK's own explicit DependsOn on the role
        return function

    def _dashboard(self, api: ecs.FargateService, worker: ecs.FargateService) -> None:
        alb = self.lb.alb.metrics
        minute = Duration.minutes(1)
        dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.config.prefix,
            default_interval=Duration.hours(3),
        )
        dashboard.add_widgets(
            cw.AlarmStatusWidget(
                title="Alarms",
                width=24,
                alarms=[
                    self.api_5xx,
                    self.api_latency,
                    *self.unhealthy,
                    self.api_cpu,
                    self.worker_cpu,
                    self.outbox_age,
                ],
            )
        )
        dashboard.add_widgets(
            cw.GraphWidget(title="Requests", width=8, left=[alb.request_count(period=minute)]),
            cw.GraphWidget(title="5xx ratio (%)", width=8, left=[self.api_5xx.metric]),
            cw.GraphWidget(
                title="Latency (s)",
                width=8,
                left=[
                    alb.target_response_time(statistic="p50", period=minute),
                    alb.target_response_time(statistic="p99", period=minute),
                ],
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="CPU (%)",
                width=8,
                left=[
                    api.metric_cpu_utilization(period=minute),
                    worker.metric_cpu_utilization(period=minute),
                ],
            ),
            cw.GraphWidget(
                title="Memory (%)",
                width=8,
                left=[
                    api.metric_memory_utilization(period=minute),
                    worker.metric_memory_utilization(period=minute),
                ],
            ),
            cw.GraphWidget(
                title="Outbox oldest age (s)", width=8, left=[self.outbox_age_metric(minute)]
            ),
        )


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
