"""SES domain identity and the SMTP sender the app authenticates as."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ses as ses
from constructs import Construct

from missionlink_infra.config import EnvConfig


def build_mail(scope: Construct, *, config: EnvConfig) -> ses.EmailIdentity:
    stack = Stack.of(scope)
    configuration_set = ses.ConfigurationSet(
        scope,
        "MailConfiguration",
        configuration_set_name=config.prefix,
        reputation_metrics=True,
        suppression_reasons=ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
        tls_policy=ses.ConfigurationSetTlsPolicy.REQUIRE,
    )
    identity = ses.EmailIdentity(
        scope,
        "MailDomain",
        identity=ses.Identity.domain(config.mail_domain),
        configuration_set=configuration_set,
        mail_from_domain=f"bounce.{config.mail_domain}",
    )
    senders = iam.Group(scope, "SmtpSenders", group_name=f"{config.prefix}-smtp-senders")
    senders.add_to_policy(
        iam.PolicyStatement(
            actions=["ses:SendRawEmail"],
            resources=[
                stack.format_arn(
                    service="ses", resource="identity", resource_name=config.mail_domain
                ),
                stack.format_arn(
                    service="ses", resource="configuration-set", resource_name=config.prefix
                ),
            ],
            conditions={"StringLike": {"ses:FromAddress": f"*@{config.mail_domain}"}},
        )
    )
    # SES SMTP authenticates with credentials derived from an IAM user's access key: this
    # user may only send as the MissionLink domain, and its key is created and rotated by
    # the runbook (docs/deploy-aws.md) and kept in Secrets Manager, never in code.
    iam.User(scope, "SmtpSender", user_name=f"{config.prefix}-smtp", groups=[senders])
    return identity
