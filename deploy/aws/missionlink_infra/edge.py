"""CloudFront in front of everything: static assets from a private S3 bucket (OAC),
pages, ``/api/*`` and ``/overlay/*`` from the load balancer."""

from __future__ import annotations

from aws_cdk import CfnParameter, Duration, RemovalPolicy, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from missionlink_infra.config import EnvConfig
from missionlink_infra.suppressions import skip_checkov, skip_nag

STATIC_PATH = "/static/*"
DYNAMIC_PATHS = ("/api/*", "/overlay/*")

VIEWER_IP_HEADER = "x-viewer-ip"
VIEWER_IP_FUNCTION = f"""function handler(event) {{
  var request = event.request;
  request.headers["{VIEWER_IP_HEADER}"] = {{ value: event.viewer.ip }};
  return request;
}}"""

WAF_REASON = (
    "The web ACL sits on the load balancer (REGIONAL scope, same stack and region); a "
    "CLOUDFRONT-scope ACL must live in us-east-1. Static assets carry no user input."
)


class EdgeStack(Stack):
    """The only public entry point of an environment."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: EnvConfig,
        logs_bucket: s3.IBucket,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        self.config = config
        certificate = CfnParameter(
            self,
            "CloudFrontCertificateArn",
            type="String",
            description=f"ACM certificate ARN in us-east-1 for {config.domain_name}",
            allowed_pattern=r"^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]+$",
        )
        self.static_bucket = s3.Bucket(
            self,
            "Static",
            bucket_name=config.static_bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,  # P9
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=logs_bucket,
            server_access_logs_prefix="s3-static/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )

        api = origins.HttpOrigin(
            config.origin_domain_name,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
            read_timeout=Duration.seconds(60),
            keepalive_timeout=Duration.seconds(60),
        )
        # The viewer's address as CloudFront saw it, in a header the viewer cannot set
        # (X-Forwarded-For can be pre-filled by a client); the WAF rate limit keys on it.
        viewer_ip = cloudfront.Function(
            self,
            "ViewerIp",
            function_name=f"{config.prefix}-viewer-ip",
            comment="Sets X-Viewer-Ip from the connection's address",
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            code=cloudfront.FunctionCode.from_inline(VIEWER_IP_FUNCTION),
        )
        # Browsers preflight API calls: OPTIONS must reach the app with Origin and the
        # Access-Control-Request-* headers (P6); the Host header stays the origin's.
        dynamic = cloudfront.BehaviorOptions(
            origin=api,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
            response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
            compress=True,
            function_associations=[
                cloudfront.FunctionAssociation(
                    function=viewer_ip, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                )
            ],
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"MissionLink {config.name}",
            domain_names=[config.domain_name],
            certificate=acm.Certificate.from_certificate_arn(
                self, "Certificate", certificate.value_as_string
            ),
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_ALL,
            enable_logging=True,
            log_bucket=logs_bucket,
            log_file_prefix="cloudfront/",
            default_behavior=dynamic,
            additional_behaviors={
                STATIC_PATH: cloudfront.BehaviorOptions(
                    origin=origins.S3BucketOrigin.with_origin_access_control(self.static_bucket),
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
                    cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                    response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
                    compress=True,
                ),
                **dict.fromkeys(DYNAMIC_PATHS, dynamic),
            },
        )
        skip_nag(self.distribution, "AwsSolutions-CFR2", WAF_REASON)
        skip_nag(
            self.distribution,
            "AwsSolutions-CFR1",
            "MissionLink serves fans worldwide; no geographic restriction is wanted.",
        )
        skip_checkov(self.distribution, "CKV_AWS_68", WAF_REASON)
