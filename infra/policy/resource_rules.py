"""Resource rules: each looks at one resource at a time, as the engine hands it over."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from pulumi_policy import ResourceValidationArgs

from infra.catalog import ELB_TLS13_POLICIES_WITHOUT_CBC
from infra.policy.props import Report, as_list, containers, environment, required, serves_http
from infra.settings.values import RATE_LIMITS

# Actions AWS grants only on "*" (no resource-level permissions).
STAR_ONLY_ACTIONS = {"ecr:GetAuthorizationToken", "logs:DescribeLogGroups", "ssmmessages:CreateControlChannel",
                     "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
                     "ssmmessages:OpenDataChannel"}
SENSITIVE_NAMES = ("SECRET", "PASSWORD", "TOKEN", "DSN", "PRIVATE_KEY")


def https_only(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:lb/listener:Listener":
        return
    props = args.props
    if props.get("protocol") == "HTTP" and required(args, "loadBalancer.allowHttp") is not None:
        actions = props.get("defaultActions") or [{}]
        redirect = actions[0].get("redirect") or {}
        if actions[0].get("type") != "redirect" or redirect.get("protocol") != "HTTPS":
            report(f"listener on port {props.get('port')} serves plain HTTP: redirect it to HTTPS (301)", None)
    elif props.get("protocol") == "HTTPS" and props.get("sslPolicy") not in ELB_TLS13_POLICIES_WITHOUT_CBC:
        report(f"HTTPS listener uses {props.get('sslPolicy')}: use a TLS 1.3 policy without CBC suites, e.g. "
               "ELBSecurityPolicy-TLS13-1-2-Res-2021-06 (infra/catalog.py lists them)", None)


def security_headers(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:lb/listener:Listener" or args.props.get("protocol") != "HTTPS":
        return
    props = args.props
    missing = []
    if "max-age=" not in str(props.get("routingHttpResponseStrictTransportSecurityHeaderValue", "")):
        missing.append("Strict-Transport-Security")
    if props.get("routingHttpResponseXContentTypeOptionsHeaderValue") != "nosniff":
        missing.append("X-Content-Type-Options: nosniff")
    if props.get("routingHttpResponseXFrameOptionsHeaderValue") not in ("DENY", "SAMEORIGIN"):
        missing.append("X-Frame-Options")
    if missing:
        report("the HTTPS listener does not add " + ", ".join(missing), None)


def debug_off_secret_key_from_a_secret(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:ecs/taskDefinition:TaskDefinition":
        return
    for container in containers(args.props):
        env = environment(container)
        if "APP_ENV" not in env and not serves_http(container):
            continue  # not the application (a sidecar, say)
        secrets = {s["name"] for s in container.get("secrets", [])}
        if env.get("FLASK_DEBUG", "").lower() in ("1", "true", "yes", "on"):
            report(f"container {container['name']}: FLASK_DEBUG is on", None)
        if env.get("APP_ENV") not in ("staging", "production"):
            report(f"container {container['name']}: APP_ENV={env.get('APP_ENV', '(unset: development)')} "
                   "(deployed stacks run staging or production)", None)
        # The signing key: injected by ECS, or read by the application from the secret it names.
        if serves_http(container) and "SECRET_KEY" not in secrets and not env.get("SECRET_KEY_SECRET_ARN"):
            report(f"container {container['name']}: SECRET_KEY must come from a secret (Secrets Manager)", None)
        # A *_SECRET_ARN names a secret; it holds none.
        exposed = [name for name in env if any(word in name for word in SENSITIVE_NAMES)
                   and not name.endswith("_SECRET_ARN")]
        if exposed:
            report(f"container {container['name']}: {', '.join(exposed)} in plain environment: use secrets", None)


VERIFIED_SSLMODES = ("verify-full", "verify-ca")


def tls_verified(args: ResourceValidationArgs, report: Report) -> None:
    """Every container that connects to PostgreSQL verifies the server against the RDS certificate bundle (the
    sslmode the tier requires; verify-ca at least where it requires none), and to Redis over TLS (the application
    verifies the certificate and host name whenever TLS is on)."""
    if args.resource_type != "aws:ecs/taskDefinition:TaskDefinition":
        return
    wanted = required(args, "database.sslMode")
    for container in containers(args.props):
        env = environment(container)
        if env.get("DATABASE_HOST"):
            mode = env.get("DATABASE_SSLMODE", "(unset: prefer)")
            if (mode != wanted) if wanted else (mode not in VERIFIED_SSLMODES):
                report(f"container {container['name']}: DATABASE_SSLMODE={mode}; this tier verifies the server: "
                       f"{wanted or ' or '.join(VERIFIED_SSLMODES)}", None)
            if not env.get("DATABASE_SSLROOTCERT"):
                report(f"container {container['name']}: no DATABASE_SSLROOTCERT to verify the server against", None)
        if env.get("REDIS_HOST") and env.get("REDIS_TLS", "").lower() != "true":
            report(f"container {container['name']}: Redis without TLS (REDIS_TLS)", None)


def wsgi_server_behind_a_proxy(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    if args.resource_type == "aws:ecs/service:Service":
        if not props.get("loadBalancers"):
            report(f"service {props.get('name')} is not behind the load balancer", None)
        if (props.get("networkConfiguration") or {}).get("assignPublicIp"):
            report(f"service {props.get('name')} gives its tasks public IPs: only the load balancer faces the "
                   "internet", None)
    elif args.resource_type == "aws:ecs/taskDefinition:TaskDefinition":
        for container in filter(serves_http, containers(props)):
            env = environment(container)
            if container.get("command"):
                report(f"container {container['name']} overrides the image's command: the entrypoint starts "
                       "Gunicorn", None)
            if int(env.get("PROXY_COUNT") or 0) < 1:
                report(f"container {container['name']}: PROXY_COUNT must count the proxy in front (ProxyFix)", None)
            if not env.get("WEB_CONCURRENCY"):
                report(f"container {container['name']}: WEB_CONCURRENCY (Gunicorn workers) is not set", None)


def api_rate_limits(args: ResourceValidationArgs, report: Report) -> None:
    """The application's own limits (webapp.limits): on, per client address and per token, in a notation the
    application parses. The WAF's rate rule is the coarse line before them (waf-on-public-load-balancer)."""
    if args.resource_type != "aws:ecs/taskDefinition:TaskDefinition":
        return
    for container in filter(serves_http, containers(args.props)):
        env = environment(container)
        if env.get("RATE_LIMITS_ENABLED", "true").strip().lower() in ("0", "false", "no", "off"):
            report(f"container {container['name']}: RATE_LIMITS_ENABLED turns the API's rate limits off", None)
        for name in ("RATE_LIMIT_PER_ADDRESS", "RATE_LIMIT_WRITES"):
            if not re.fullmatch(RATE_LIMITS, env.get(name, "")):
                report(f"container {container['name']}: {name}={env.get(name, '(unset)')!r} is not a rate limit "
                       "(e.g. 600 per minute); set service.rateLimitPerAddress and service.rateLimitWrites", None)


def logs_with_retention(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:cloudwatch/logGroup:LogGroup":
        return
    if not args.props.get("retentionInDays"):
        report(f"log group {args.props.get('name')} keeps logs forever: set a retention", None)
    if not args.props.get("kmsKeyId"):
        report(f"log group {args.props.get('name')} is not encrypted with a KMS key", None)


def health_checks(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    if args.resource_type == "aws:lb/targetGroup:TargetGroup":
        check = props.get("healthCheck") or {}
        if check.get("enabled") is False or not check.get("path"):
            report("target group without an HTTP health check path", None)
    elif args.resource_type == "aws:ecs/taskDefinition:TaskDefinition":
        for container in filter(serves_http, containers(props)):
            if not container.get("healthCheck"):
                report(f"container {container['name']} has no health check", None)
    elif args.resource_type == "aws:ecs/service:Service" and props.get("loadBalancers"):
        if props.get("healthCheckGracePeriodSeconds") is None:
            report(f"service {props.get('name')} has no health check grace period", None)


ENCRYPTED_AT_REST: dict[str, Callable[[dict], bool]] = {
    # Replicas too say so, and with which key, rather than leave it to inheritance.
    "aws:rds/instance:Instance": lambda p: bool(p.get("storageEncrypted")) and bool(p.get("kmsKeyId")),
    "aws:elasticache/replicationGroup:ReplicationGroup": lambda p: bool(p.get("atRestEncryptionEnabled")),
    "aws:sns/topic:Topic": lambda p: bool(p.get("kmsMasterKeyId")),
    "aws:secretsmanager/secret:Secret": lambda p: bool(p.get("kmsKeyId")),
    "aws:backup/vault:Vault": lambda p: bool(p.get("kmsKeyArn")),
    "aws:ecr/repository:Repository": lambda p: any(c.get("encryptionType") == "KMS"
                                                   for c in p.get("encryptionConfigurations") or []),
}


def encryption_at_rest(args: ResourceValidationArgs, report: Report) -> None:
    check = ENCRYPTED_AT_REST.get(args.resource_type)
    if check and not check(args.props):
        report(f"{args.resource_type.rsplit(':', 1)[-1]} {args.name} is not encrypted at rest", None)


def encryption_in_transit(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    if args.resource_type == "aws:elasticache/replicationGroup:ReplicationGroup" and \
            not props.get("transitEncryptionEnabled"):
        report("Redis without TLS", None)
    if args.resource_type == "aws:rds/parameterGroup:ParameterGroup" and \
            not any(p.get("name") == "rds.force_ssl" and str(p.get("value")) == "1"
                    for p in props.get("parameters") or []):
        report(f"parameter group {args.name} does not set rds.force_ssl=1", None)
    if args.resource_type == "aws:s3/bucketPolicy:BucketPolicy":
        document = json.loads(props.get("policy") or "{}")
        if not any(s.get("Effect") == "Deny" and (s.get("Condition") or {}).get("Bool", {}).get(
                "aws:SecureTransport") == "false" for s in document.get("Statement", [])):
            report(f"bucket policy {args.name} does not deny requests without TLS", None)


def deletion_protection_and_multi_az(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    if args.resource_type == "aws:rds/instance:Instance":
        if required(args, "database.deletionProtection") and not props.get("deletionProtection"):
            report(f"database {props.get('identifier')} is not deletion-protected", None)
        if not props.get("replicateSourceDb") and not props.get("multiAz"):
            report(f"database {props.get('identifier')} is single-AZ", None)
    elif args.resource_type == "aws:elasticache/replicationGroup:ReplicationGroup":
        if not (props.get("multiAzEnabled") and props.get("automaticFailoverEnabled")):
            report("Redis without Multi-AZ automatic failover", None)
    elif args.resource_type == "aws:lb/loadBalancer:LoadBalancer" and not props.get("enableDeletionProtection"):
        report("load balancer without deletion protection", None)


def no_wildcard_iam(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type not in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        if args.resource_type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment" and \
                str(args.props.get("policyArn", "")).endswith(("/AdministratorAccess", "/PowerUserAccess")):
            report(f"{args.name} attaches {args.props['policyArn']}", None)
        return
    document = args.props.get("policy")
    document = json.loads(document) if isinstance(document, str) else (document or {})
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = as_list(statement.get("Action"))
        resources = as_list(statement.get("Resource"))
        wild = [a for a in actions if a == "*" or a.endswith(":*")]
        if wild:
            report(f"{args.name}: allows {', '.join(wild)}", None)
        if "*" in resources and set(actions) - STAR_ONLY_ACTIONS:
            report(f"{args.name}: {', '.join(sorted(set(actions) - STAR_ONLY_ACTIONS))} on every resource", None)


def error_tracking(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:ecs/taskDefinition:TaskDefinition":
        return
    for container in filter(serves_http, containers(args.props)):
        names = set(environment(container)) | {s["name"] for s in container.get("secrets", [])}
        if "SENTRY_DSN" not in names:
            report(f"container {container['name']}: no SENTRY_DSN; errors reach only the logs and the 5xx alarm",
                   None)
