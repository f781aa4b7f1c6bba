"""State: two Aurora PostgreSQL clusters (core, identity), Redis broker, app secrets."""

from __future__ import annotations

from aws_cdk import Duration, Fn, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from missionlink_infra.config import DatabaseSize, EnvConfig
from missionlink_infra.keys import encrypted_log_group, platform_key
from missionlink_infra.network import NetworkStack
from missionlink_infra.suppressions import skip_nag

POSTGRES_VERSION = rds.AuroraPostgresEngineVersion.VER_17_9
REDIS_PORT = 6379

ROTATION_REASON = (
    "ECS injects database secrets when a task starts; rotation is a runbook step "
    "(rotate, then force a new deployment) so running tasks never hold a stale password."
)


class DataStack(Stack):
    """Databases, broker and the secrets the app reads at start."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: EnvConfig,
        network: NetworkStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        self.config = config
        self.network = network
        self.key = platform_key(self, "DataKey", config, "data")
        removal = RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY

        self.core_db, self.core_db_url = self._database(
            "Core", "core", "missionlink_core", config.core_db
        )
        self.identity_db, self.identity_db_url = self._database(
            "Identity", "identity", "missionlink_identity", config.identity_db
        )
        self.broker_url = self._broker()

        # Filled by operators (see docs/deploy-aws.md); generated placeholders until then.
        self.jwt_private_key = self._secret(
            "JwtPrivateKey",
            "jwt-private-key",
            "PEM private key that signs access tokens",
            removal,
        )
        self.payment_webhook_secret = self._secret(
            "PaymentWebhookSecret",
            "payment-webhook-secret",
            "shared secret of the payment provider's signed webhooks",
            removal,
        )
        self.smtp_credentials = sm.Secret(
            self,
            "SmtpCredentials",
            secret_name=f"{config.prefix}/smtp",
            description="SES SMTP username and password (JSON keys username, password)",
            encryption_key=self.key,
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template='{"username": "set-me"}',  # noqa: S106 - a placeholder
                generate_string_key="password",
                exclude_punctuation=True,
            ),
            removal_policy=removal,
        )
        # The real payment providers' keys (docs/payments.md), as PortOne and Stripe issue
        # them; blank until then, so PAYMENT_PROVIDER=portone or stripe refuses to start
        # rather than run on a made-up key (the sandbox and the generic webhook ignore them).
        self.portone = self._blank_secret(
            "Portone", "portone", "PortOne V2 API secret and webhook secret",
            ("api-secret", "webhook-secret"), removal,
        )
        self.stripe = self._blank_secret(
            "Stripe", "stripe", "Stripe secret key and webhook signing secret",
            ("secret-key", "webhook-secret"), removal,
        )
        # The key-encryption keys of the payout bank accounts (docs/security.md), made by
        # `missionlink payouts new-key`; blank leaves payouts off (503 payouts-unavailable).
        self.payout_account_keys = sm.Secret(
            self,
            "PayoutAccountKeys",
            secret_name=f"{config.prefix}/payout-account-keys",
            description="PAYOUT_ACCOUNT_KEYS: <key id>:<base64 of 32 bytes>, current first",
            encryption_key=self.key,
            # A blank placeholder (Secrets Manager stores no empty string): no keys yet.
            secret_string_value=SecretValue.unsafe_plain_text(" "),
            removal_policy=removal,
        )
        for secret in (
            self.jwt_private_key,
            self.payment_webhook_secret,
            self.smtp_credentials,
            self.portone,
            self.stripe,
            self.payout_account_keys,
        ):
            skip_nag(
                secret,
                "AwsSolutions-SMG4",
                "Issued by a third party or an operator; "
                "rotated by the runbook in docs/deploy-aws.md.",
            )

    def _secret(self, cid: str, name: str, description: str, removal: RemovalPolicy) -> sm.Secret:
        return sm.Secret(
            self,
            cid,
            secret_name=f"{self.config.prefix}/{name}",
            description=description,
            encryption_key=self.key,
            generate_secret_string=sm.SecretStringGenerator(
                exclude_punctuation=True, password_length=64
            ),
            removal_policy=removal,
        )

    def _blank_secret(
        self,
        cid: str,
        name: str,
        description: str,
        keys: tuple[str, ...],
        removal: RemovalPolicy,
    ) -> sm.Secret:
        """A JSON secret whose keys the operator fills (docs/deploy-aws.md, step 7)."""
        return sm.Secret(
            self,
            cid,
            secret_name=f"{self.config.prefix}/{name}",
            description=f"{description} (JSON keys {', '.join(keys)})",
            encryption_key=self.key,
            secret_object_value={k: SecretValue.unsafe_plain_text("") for k in keys},
            removal_policy=removal,
        )

    def _database(
        self, cid: str, name: str, user: str, size: DatabaseSize
    ) -> tuple[rds.DatabaseCluster, sm.Secret]:
        config = self.config
        sg = ec2.SecurityGroup(
            self,
            f"{cid}DbSecurityGroup",
            vpc=self.network.vpc,
            description=f"{config.prefix} {name} database",
            allow_all_outbound=False,
        )
        sg.add_ingress_rule(
            self.network.app_security_group, ec2.Port.tcp(5432), "from the app tasks"
        )
        cluster_id = f"{config.prefix}-{name}"
        log_group = encrypted_log_group(self, f"{cid}DbLogs", config, f"rds-{name}", self.key)
        # RDS writes to its own fixed group name; ours only pins retention and encryption.
        log_group.node.default_child.add_property_override(  # type: ignore[union-attr]
            "LogGroupName", f"/aws/rds/cluster/{cluster_id}/postgresql"
        )
        parameters = rds.ParameterGroup(
            self,
            f"{cid}DbParameters",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=POSTGRES_VERSION),
            description=f"{cluster_id} cluster parameters",
            parameters={
                "rds.force_ssl": "1",
                "log_min_duration_statement": "500",
                "log_lock_waits": "1",
                "shared_preload_libraries": "pg_stat_statements",
            },
        )
        readers = [
            rds.ClusterInstance.serverless_v2(
                f"reader{i + 1}",
                scale_with_writer=True,
                enable_performance_insights=True,
                performance_insight_encryption_key=self.key,
                auto_minor_version_upgrade=True,
            )
            for i in range(size.readers)
        ]
        cluster = rds.DatabaseCluster(
            self,
            f"{cid}Db",
            cluster_identifier=cluster_id,
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=POSTGRES_VERSION),
            parameter_group=parameters,
            credentials=rds.Credentials.from_generated_secret(
                user,
                secret_name=f"{config.prefix}/{name}-db",
                encryption_key=self.key,
                exclude_characters=" %+~`#$&*()|[]{}:;<>?!'/@\"\\",
            ),
            default_database_name="missionlink",
            writer=rds.ClusterInstance.serverless_v2(
                "writer",
                enable_performance_insights=True,
                performance_insight_encryption_key=self.key,
                auto_minor_version_upgrade=True,
            ),
            readers=readers,
            serverless_v2_min_capacity=size.min_acu,
            serverless_v2_max_capacity=size.max_acu,
            vpc=self.network.vpc,
            vpc_subnets=self.network.data_subnets,
            security_groups=[sg],
            storage_encrypted=True,
            storage_encryption_key=self.key,
            iam_authentication=True,
            backup=rds.BackupProps(
                retention=Duration.days(size.backup_retention_days),
                preferred_window="17:00-18:00",  # 02:00-03:00 KST
            ),
            preferred_maintenance_window="Mon:18:30-Mon:19:30",
            deletion_protection=size.deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT,
            cloudwatch_logs_exports=["postgresql"],
            monitoring_interval=Duration.seconds(60),
            copy_tags_to_snapshot=True,
        )
        cluster.node.add_dependency(log_group)
        skip_nag(
            cluster,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonRDSEnhancedMonitoringRole]",
            "AWS's service-role policy for RDS Enhanced Monitoring; it only writes the "
            "RDSOSMetrics log group.",
        )
        skip_nag(cluster, "AwsSolutions-SMG4", ROTATION_REASON)
        if not size.deletion_protection:
            skip_nag(
                cluster,
                "AwsSolutions-RDS10",
                "dev databases are disposable; staging and prod keep deletion protection.",
            )
        # The URL carries no password: the app injects DATABASE_PASSWORD on its own (P16).
        url = sm.Secret(
            self,
            f"{cid}DatabaseUrl",
            secret_name=f"{config.prefix}/{name}-database-url",
            description=f"postgresql:// URL of the {name} database, without the password",
            encryption_key=self.key,
            secret_string_value=SecretValue.unsafe_plain_text(
                Fn.join(
                    "",
                    [
                        f"postgresql://{user}@",
                        cluster.cluster_endpoint.socket_address,
                        "/missionlink",
                    ],
                )
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        skip_nag(url, "AwsSolutions-SMG4", "Holds an endpoint, no credential; nothing to rotate.")
        return cluster, url

    def _broker(self) -> sm.Secret:
        config = self.config
        sg = ec2.SecurityGroup(
            self,
            "BrokerSecurityGroup",
            vpc=self.network.vpc,
            description=f"{config.prefix} Redis broker",
            allow_all_outbound=False,
        )
        sg.add_ingress_rule(
            self.network.app_security_group, ec2.Port.tcp(REDIS_PORT), "from the app tasks"
        )
        token = sm.Secret(
            self,
            "BrokerAuthToken",
            secret_name=f"{config.prefix}/broker-auth-token",
            description="Redis AUTH token",
            encryption_key=self.key,
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template="{}",  # noqa: S106 - the token is generated
                generate_string_key="token",
                exclude_punctuation=True,
                password_length=64,
            ),
        )
        skip_nag(token, "AwsSolutions-SMG4", ROTATION_REASON)
        subnets = elasticache.CfnSubnetGroup(
            self,
            "BrokerSubnets",
            description=f"{config.prefix} broker",
            subnet_ids=self.network.vpc.select_subnets(subnet_group_name="data").subnet_ids,
        )
        log_group = encrypted_log_group(self, "BrokerSlowLog", config, "redis-slow-log", self.key)
        replicated = config.cache.replicas > 0
        group = elasticache.CfnReplicationGroup(
            self,
            "Broker",
            replication_group_description=f"{config.prefix} message broker",
            engine="redis",
            engine_version="7.1",
            cache_node_type=config.cache.node_type,
            num_cache_clusters=1 + config.cache.replicas,
            automatic_failover_enabled=replicated,
            multi_az_enabled=replicated,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[sg.security_group_id],
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            kms_key_id=self.key.key_arn,
            auth_token=token.secret_value_from_json("token").unsafe_unwrap(),
            auto_minor_version_upgrade=True,
            snapshot_retention_limit=7 if config.is_prod else 1,
            port=REDIS_PORT,
            log_delivery_configurations=[
                elasticache.CfnReplicationGroup.LogDeliveryConfigurationRequestProperty(
                    destination_type="cloudwatch-logs",
                    destination_details=elasticache.CfnReplicationGroup.DestinationDetailsProperty(
                        cloud_watch_logs_details=elasticache.CfnReplicationGroup.CloudWatchLogsDestinationDetailsProperty(
                            log_group=log_group.log_group_name
                        )
                    ),
                    log_format="json",
                    log_type="slow-log",
                )
            ],
        )
        skip_nag(
            group,
            "AwsSolutions-AEC5",
            "Only the app security group reaches the broker; the default port is fine.",
        )
        if not replicated:
            skip_nag(
                group,
                "AwsSolutions-AEC4",
                "dev runs a single broker node; staging and prod replicate across AZs.",
            )
        # rediss:// with the AUTH token resolved by CloudFormation, never written in code.
        url = sm.Secret(
            self,
            "BrokerUrl",
            secret_name=f"{config.prefix}/broker-url",
            description="rediss:// URL of the message broker, with its AUTH token",
            encryption_key=self.key,
            secret_string_value=SecretValue.unsafe_plain_text(
                Fn.join(
                    "",
                    [
                        "rediss://:",
                        token.secret_value_from_json("token").unsafe_unwrap(),
                        "@",
                        group.attr_primary_end_point_address,
                        ":",
                        group.attr_primary_end_point_port,
                        "/0",
                    ],
                )
            ),
        )
        skip_nag(url, "AwsSolutions-SMG4", ROTATION_REASON)
        return url

    @property
    def secrets_key(self) -> kms.IKey:
        return self.key
