"""The deployment checklist, and AWS hardening, as pulumi_policy rules.

The same Policy objects run in `pulumi preview --policy-pack infra/policy` (the pack's __main__.py) and offline
(`infra/policy/offline.py`, used by `python -m infra.plan` and the tests). Props are what the engine passes: the
resource's inputs (camelCase), plus known outputs on a stack validation. Checklist items the infrastructure cannot
see (CSRF, static caching, the app's own headers) are tested in the application and nginx suites instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra import sizing

Report = Callable[[str, str | None], None]
# Actions AWS grants only on "*" (no resource-level permissions).
STAR_ONLY_ACTIONS = {"ecr:GetAuthorizationToken", "logs:DescribeLogGroups", "ssmmessages:CreateControlChannel",
                     "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
                     "ssmmessages:OpenDataChannel"}
SENSITIVE_NAMES = ("SECRET", "PASSWORD", "TOKEN", "DSN", "PRIVATE_KEY")


def containers(props) -> list[dict]:
    raw = props.get("containerDefinitions") or "[]"
    return json.loads(raw) if isinstance(raw, str) else list(raw)


def environment(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("environment", [])}


def serves_http(container: dict) -> bool:
    """The application server's container (the backup jobs run the same image with a command and no port)."""
    return bool(container.get("portMappings"))


# --- resource rules: one resource at a time


def https_only(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:lb/listener:Listener":
        return
    props = args.props
    if props.get("protocol") == "HTTP":
        actions = props.get("defaultActions") or [{}]
        redirect = actions[0].get("redirect") or {}
        if actions[0].get("type") != "redirect" or redirect.get("protocol") != "HTTPS":
            report(f"listener on port {props.get('port')} serves plain HTTP: redirect it to HTTPS (301)", None)
    elif props.get("protocol") == "HTTPS" and not str(props.get("sslPolicy", "")).startswith(
            "ELBSecurityPolicy-TLS13"):
        report(f"HTTPS listener uses {props.get('sslPolicy')}: use an ELBSecurityPolicy-TLS13-* policy", None)


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
        if "SECRET_KEY" not in secrets:
            report(f"container {container['name']}: SECRET_KEY must come from a secret (Secrets Manager)", None)
        exposed = [name for name in env if any(word in name for word in SENSITIVE_NAMES)]
        if exposed:
            report(f"container {container['name']}: {', '.join(exposed)} in plain environment: use secrets", None)


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


def logs_with_retention(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "aws:cloudwatch/logGroup:LogGroup":
        return
    if not args.props.get("retentionInDays"):
        report(f"log group {args.props.get('name')} keeps logs forever: set a retention", None)
    if not args.props.get("kmsKeyId"):
        report(f"log group {args.props.get('name')} is not encrypted with the stack key", None)


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
    "aws:rds/instance:Instance": lambda p: bool(p.get("storageEncrypted")) or bool(p.get("replicateSourceDb")),
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


def nothing_public_in_the_data_tier(args: StackValidationArgs, report: Report) -> None:
    """No public database or cache; the internet reaches only the load balancer's security group, on 80 and 443;
    no data-tier subnet gives public addresses."""
    for db in of_type(args.resources, "aws:rds/instance:Instance"):
        if db.props.get("publiclyAccessible"):
            report(f"database {db.props.get('identifier')} is publicly accessible", None)
    lb_groups = {g for lb in of_type(args.resources, "aws:lb/loadBalancer:LoadBalancer")
                 for g in lb.props.get("securityGroups") or []}
    for rule in of_type(args.resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        props = rule.props
        if props.get("cidrIpv4") == "0.0.0.0/0" or props.get("cidrIpv6") == "::/0":
            if props.get("securityGroupId") not in lb_groups or \
                    (props.get("fromPort"), props.get("toPort")) not in ((80, 80), (443, 443)):
                report(f"ingress rule {rule.name} opens port {props.get('fromPort')} to the internet (only the "
                       "load balancer's 80 and 443 may be)", None)
    for group in of_type(args.resources, "aws:ec2/securityGroup:SecurityGroup"):
        for ingress in group.props.get("ingress") or []:
            if "0.0.0.0/0" in (ingress.get("cidrBlocks") or []) or "::/0" in (ingress.get("ipv6CidrBlocks") or []):
                report(f"security group {group.name} has an inline rule open to the internet", None)
    for subnet in of_type(args.resources, "aws:ec2/subnet:Subnet"):
        if (subnet.props.get("tags") or {}).get("Tier") in ("private", "isolated") and \
                subnet.props.get("mapPublicIpOnLaunch"):
            report(f"subnet {subnet.name} ({subnet.props['tags']['Tier']}) gives public addresses", None)


def deletion_protection_and_multi_az(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    if args.resource_type == "aws:rds/instance:Instance":
        if not props.get("deletionProtection"):
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
        actions = _as_list(statement.get("Action"))
        resources = _as_list(statement.get("Resource"))
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


def _as_list(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


# --- stack rules: across resources


def of_type(resources: Iterable[PolicyResource], resource_type: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == resource_type]


def connection_pooling_within_budget(args: StackValidationArgs, report: Report) -> None:
    tasks = [c for r in of_type(args.resources, "aws:ecs/taskDefinition:TaskDefinition")
             for c in containers(r.props) if serves_http(c)]
    targets = of_type(args.resources, "aws:appautoscaling/target:Target")
    if not tasks:
        return
    env = environment(tasks[0])
    if not all(env.get(k) for k in ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "WEB_CONCURRENCY")):
        report("the application does not set DB_POOL_SIZE, DB_MAX_OVERFLOW and WEB_CONCURRENCY: its connection "
               "use is unbounded", None)
        return
    max_tasks = max((int(t.props.get("maxCapacity") or 1) for t in targets), default=1)
    budget = max_tasks * int(env["WEB_CONCURRENCY"]) * (int(env["DB_POOL_SIZE"]) + int(env["DB_MAX_OVERFLOW"]))
    for db in of_type(args.resources, "aws:rds/instance:Instance"):
        limit = sizing.max_connections(db.props.get("instanceClass", ""))
        if limit is None or budget > limit * sizing.CONNECTION_BUDGET_SHARE:
            report(f"{max_tasks} tasks x {env['WEB_CONCURRENCY']} workers x (pool {env['DB_POOL_SIZE']} + "
                   f"overflow {env['DB_MAX_OVERFLOW']}) = {budget} connections; {db.props.get('identifier')} "
                   f"({db.props.get('instanceClass')}) allows {limit}", None)


def alarms_present(args: StackValidationArgs, report: Report) -> None:
    alarms = of_type(args.resources, "aws:cloudwatch/metricAlarm:MetricAlarm")
    watched = {q["metric"]["metricName"] for a in alarms for q in a.props.get("metricQueries") or []
               if q.get("metric")} | {a.props.get("metricName") for a in alarms}
    needed = {"HTTPCode_Target_5XX_Count", "TargetResponseTime", "UnHealthyHostCount", "CPUUtilization",
              "MemoryUtilization", "FreeStorageSpace", "DatabaseConnections", "EngineCPUUtilization"}
    if needed - watched:
        report("no alarm on " + ", ".join(sorted(needed - watched)), None)
    silent = [a.name for a in alarms if not a.props.get("alarmActions")]
    if silent:
        report("alarms that notify nobody: " + ", ".join(silent), None)
    if alarms and not of_type(args.resources, "aws:sns/topicSubscription:TopicSubscription"):
        report("the alarm topic has no subscriber: set monitoring.alarmEmails", None)
    for service in of_type(args.resources, "aws:ecs/service:Service"):
        alarms_cfg = service.props.get("alarms") or {}
        if not (alarms_cfg.get("enable") and alarms_cfg.get("rollback") and alarms_cfg.get("alarmNames")):
            report(f"service {service.props.get('name')} does not roll back deployments on alarms", None)


def backups_and_restore_drill(args: StackValidationArgs, report: Report) -> None:
    for db in of_type(args.resources, "aws:rds/instance:Instance"):
        if not db.props.get("replicateSourceDb") and not db.props.get("backupRetentionPeriod"):
            report(f"database {db.props.get('identifier')} has no automated backups", None)
    # By family, not ARN: a task definition's ARN is unknown in a preview whenever the image changes. The backup
    # schedules are named after the task family they run (infra/components/backup_jobs.py).
    commands = {}
    for task in of_type(args.resources, "aws:ecs/taskDefinition:TaskDefinition"):
        for container in containers(task.props):
            commands[task.props.get("family")] = " ".join(container.get("command") or [])
    scheduled = [commands.get(s.props.get("name"), "") for s in of_type(args.resources,
                                                                       "aws:scheduler/schedule:Schedule")]
    if not any("backup create" in c for c in scheduled):
        report("no scheduled logical backup (flask backup create)", None)
    if not any("backup drill" in c for c in scheduled):
        report("no scheduled restore drill (flask backup drill): the restore is never tested", None)


POLICIES = [
    ResourceValidationPolicy("https-only", "HTTP redirects to HTTPS; HTTPS uses a TLS 1.3 policy", https_only),
    ResourceValidationPolicy("security-headers", "HSTS, nosniff and X-Frame-Options on every response",
                             security_headers),
    ResourceValidationPolicy("debug-off-secret-key-from-a-secret", "no debug, a staging/production config class, "
                             "SECRET_KEY and every credential injected from Secrets Manager",
                             debug_off_secret_key_from_a_secret),
    ResourceValidationPolicy("wsgi-server-behind-a-proxy", "Gunicorn (the image's entrypoint) behind the load "
                             "balancer, ProxyFix told about it, no public task IPs", wsgi_server_behind_a_proxy),
    StackValidationPolicy("connection-pooling-within-budget", "tasks x workers x (pool + overflow) within 80 % "
                          "of every database instance's max_connections", connection_pooling_within_budget),
    ResourceValidationPolicy("logs-with-retention", "every log group expires and is encrypted",
                             logs_with_retention),
    ResourceValidationPolicy("health-checks", "load balancer, container and service health checks",
                             health_checks),
    StackValidationPolicy("alarms-present", "alarms on errors, latency, health, saturation and storage, each "
                          "notifying someone; deployments roll back on alarms", alarms_present),
    StackValidationPolicy("backups-and-restore-drill", "automated database backups, a scheduled logical backup "
                          "and a scheduled restore drill", backups_and_restore_drill),
    ResourceValidationPolicy("encryption-at-rest", "databases, cache, topics, secrets, vaults and images "
                             "encrypted", encryption_at_rest),
    ResourceValidationPolicy("encryption-in-transit", "TLS to Redis and PostgreSQL, TLS-only buckets",
                             encryption_in_transit),
    StackValidationPolicy("nothing-public-in-the-data-tier", "no public database or data subnet; the internet "
                          "reaches only the load balancer, on 80/443", nothing_public_in_the_data_tier),
    ResourceValidationPolicy("deletion-protection-and-multi-az", "prod survives an AZ and a mistaken delete",
                             deletion_protection_and_multi_az),
    ResourceValidationPolicy("no-wildcard-iam", "no wildcard actions; '*' resources only for actions that take "
                             "nothing else", no_wildcard_iam),
    ResourceValidationPolicy("error-tracking", "errors reported to an error tracker (Sentry)", error_tracking),
]

MANDATORY, ADVISORY, DISABLED = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY, EnforcementLevel.DISABLED
# Enforcement per tier: everything mandatory in staging and prod except what the tier deliberately lacks; dev is
# told (advisory), never blocked, except for the rules no stack may break.
ALWAYS_MANDATORY = {"debug-off-secret-key-from-a-secret", "no-wildcard-iam", "nothing-public-in-the-data-tier",
                    "encryption-at-rest", "logs-with-retention"}
LEVELS = {
    "dev": {p.name: MANDATORY if p.name in ALWAYS_MANDATORY else ADVISORY for p in POLICIES}
    | {"deletion-protection-and-multi-az": DISABLED},
    "staging": {p.name: MANDATORY for p in POLICIES}
    | {"deletion-protection-and-multi-az": ADVISORY, "error-tracking": ADVISORY},
    "prod": {p.name: MANDATORY for p in POLICIES} | {"error-tracking": ADVISORY},
}
