"""The Application Load Balancer: HTTPS in front of the tasks, HTTP redirected, security headers, access logs."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.components import AwsContext, type_token
from infra.components.bucket import PrivateBucket
from infra.settings import LoadBalancerSettings

HSTS = "max-age=31536000; includeSubDomains"
# Regions opened since August 2022: ELB writes access logs there only as the log delivery service principal and has
# no regional account (aws.elb.get_service_account fails for them). Add a region here when AWS opens one.
SERVICE_PRINCIPAL_ONLY_REGIONS = frozenset({
    "ap-south-2", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7", "ap-east-2", "ca-west-1", "eu-central-2",
    "eu-south-2", "il-central-1", "me-central-1", "mx-central-1",
})


def security_headers(https: bool = True) -> dict:
    """Response headers the listener adds to every answer (and the Server header it drops); HSTS only over
    HTTPS, where it means something."""
    headers = {
        "routing_http_response_x_content_type_options_header_value": "nosniff",
        "routing_http_response_x_frame_options_header_value": "DENY",
        "routing_http_response_server_enabled": False,
    }
    if https:
        headers["routing_http_response_strict_transport_security_header_value"] = HSTS
    return headers


class LoadBalancer(pulumi.ComponentResource):
    """An internet-facing ALB in the public subnets: 443 with a TLS 1.3 policy and an ACM certificate (existing, or
    DNS-validated in a Route 53 zone), 80 answering 301 to HTTPS, or plain HTTP in dev when explicitly allowed.
    Its security group reaches only the application's port on the application's group."""

    def __init__(self, name: str, settings: LoadBalancerSettings, *, context: AwsContext, name_prefix: str,
                 vpc_id: pulumi.Input[str], subnet_ids: list[pulumi.Input[str]],
                 app_security_group_id: pulumi.Input[str], app_port: int, log_retention_days: int, protect: bool,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("load_balancer", "LoadBalancer"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        https = settings.https

        self.security_group = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=vpc_id,
                                                    description="Load balancer: HTTP and HTTPS from anywhere",
                                                    tags={"Name": f"{name_prefix}-alb"}, opts=child)
        sg_child = pulumi.ResourceOptions(parent=self.security_group)
        for port in (80, 443):
            for family, cidr in (("ipv4", "0.0.0.0/0"), ("ipv6", "::/0")):
                aws.vpc.SecurityGroupIngressRule(f"{name}-{port}-{family}", security_group_id=self.security_group.id,
                                                 ip_protocol="tcp", from_port=port, to_port=port,
                                                 **{f"cidr_{family}": cidr}, description=f"{port} from anywhere",
                                                 opts=sg_child)
        aws.vpc.SecurityGroupEgressRule(f"{name}-to-app", security_group_id=self.security_group.id,
                                        ip_protocol="tcp", from_port=app_port, to_port=app_port,
                                        referenced_security_group_id=app_security_group_id,
                                        description="only to the application tasks", opts=sg_child)

        logs = PrivateBucket(f"{name}-access-logs", purpose=f"{name_prefix} load balancer access logs",
                             expire_days=log_retention_days, force_destroy=not protect,
                             extra_statements=lambda arn: log_delivery_statements(arn, context), opts=child)

        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            ip_address_type="dualstack",
            subnets=subnet_ids,
            security_groups=[self.security_group.id],
            drop_invalid_header_fields=True,
            enable_deletion_protection=settings.deletion_protection,
            idle_timeout=settings.idle_timeout_seconds,
            access_logs={"bucket": logs.name, "enabled": True, "prefix": "alb"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]),
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-app",
            target_type="ip",
            port=app_port,
            protocol="HTTP",
            vpc_id=vpc_id,
            deregistration_delay=settings.deregistration_delay_seconds,
            slow_start=settings.slow_start_seconds,
            health_check={
                "enabled": True,
                "path": settings.health_check_path,
                "protocol": "HTTP",
                "port": "traffic-port",
                "matcher": "200",
                "interval": settings.health_check_interval_seconds,
                "timeout": settings.health_check_timeout_seconds,
                "healthy_threshold": settings.healthy_threshold,
                "unhealthy_threshold": settings.unhealthy_threshold,
            },
            opts=child,
        )
        forward = [{"type": "forward", "target_group_arn": self.target_group.arn}]
        alb_child = pulumi.ResourceOptions(parent=self.alb)
        if https:
            certificate_arn = settings.certificate_arn or self._certificate(name, settings)
            https_listener = aws.lb.Listener(f"{name}-https", load_balancer_arn=self.alb.arn, port=443,
                                             protocol="HTTPS", ssl_policy=settings.ssl_policy,
                                             certificate_arn=certificate_arn, default_actions=forward,
                                             **security_headers(), opts=alb_child)
            http_listener = aws.lb.Listener(f"{name}-http", load_balancer_arn=self.alb.arn, port=80, protocol="HTTP",
                                            default_actions=[{"type": "redirect", "redirect": {
                                                "protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}],
                                            opts=alb_child)
            self.listeners = [https_listener, http_listener]
        else:
            # Dev without a domain, by the explicit allowHttp setting: the plan flags it.
            self.listeners = [aws.lb.Listener(f"{name}-http", load_balancer_arn=self.alb.arn, port=80,
                                              protocol="HTTP", default_actions=forward,
                                              **security_headers(https=False), opts=alb_child)]
        if settings.domain and settings.hosted_zone_id:
            for record_type in ("A", "AAAA"):
                aws.route53.Record(f"{name}-alias-{record_type.lower()}", zone_id=settings.hosted_zone_id,
                                   name=settings.domain, type=record_type,
                                   aliases=[{"name": self.alb.dns_name, "zone_id": self.alb.zone_id,
                                             "evaluate_target_health": True}], opts=alb_child)

        host = settings.domain or self.alb.dns_name
        self.url = pulumi.Output.concat("https://" if https else "http://", host)
        self.https = https
        self.arn_suffix = self.alb.arn_suffix
        self.register_outputs({"url": self.url, "dns_name": self.alb.dns_name, "arn": self.alb.arn,
                               "target_group_arn": self.target_group.arn,
                               "security_group_id": self.security_group.id})

    def _certificate(self, name: str, settings: LoadBalancerSettings) -> pulumi.Output[str]:
        """A DNS-validated certificate for the domain: the validation record in the zone, then the validation."""
        certificate = aws.acm.Certificate(f"{name}-certificate", domain_name=settings.domain,
                                          validation_method="DNS", key_algorithm="EC_prime256v1",
                                          opts=pulumi.ResourceOptions(parent=self))
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(f"{name}-certificate-validation", zone_id=settings.hosted_zone_id,
                                    name=option.resource_record_name, type=option.resource_record_type,
                                    records=[option.resource_record_value], ttl=300, allow_overwrite=True,
                                    opts=pulumi.ResourceOptions(parent=certificate))
        validation = aws.acm.CertificateValidation(f"{name}-certificate", certificate_arn=certificate.arn,
                                                   validation_record_fqdns=[record.fqdn],
                                                   opts=pulumi.ResourceOptions(parent=certificate))
        return validation.certificate_arn


def log_delivery_statements(bucket_arn: str, context: AwsContext) -> list[dict]:
    """Elastic Load Balancing writes access logs under alb/AWSLogs/<account>/: the log delivery service principal
    (regions from August 2022 on) and, where the region has one, the regional ELB account (older regions)."""
    resource = f"{bucket_arn}/alb/AWSLogs/{context.account_id}/*"
    statements = [{"Sid": "LogDeliveryWritesAccessLogs", "Effect": "Allow",
                   "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
                   "Action": "s3:PutObject", "Resource": resource}]
    if context.elb_account_arn:
        statements.append({"Sid": "RegionalElbAccountWritesAccessLogs", "Effect": "Allow",
                           "Principal": {"AWS": context.elb_account_arn}, "Action": "s3:PutObject",
                           "Resource": resource})
    return statements
