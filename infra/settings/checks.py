"""The rules across values: what AWS would refuse, what the tier requires (infra/tiers/requirements.py), and the
values that must agree across the load balancer, ECS, Gunicorn and the database. One rule, one problem."""

from __future__ import annotations

import ipaddress
import re

from infra import sizing, tiers
from infra.catalog import WAF_ALB_BODY_LIMIT_BYTES
from infra.settings.fields import value_at
from infra.settings.problems import Problem
from infra.settings.schema import Settings
from infra.settings.values import overlaps, rotation_hours

# The image's PostgreSQL client (app/Dockerfile: postgresql-client-15, whose pg_dump refuses a newer server) and the
# roles command (app/webapp/roles.py) are PostgreSQL 15's; upgrade them together (a test ties the three).
POSTGRES_MAJOR = "15"


def cross_checks(s: Settings) -> list[Problem]:
    """Every rule that involves more than one value, or the tier."""
    return aws_rules(s) + tier_requirements(s) + serving_checks(s)


def aws_rules(s: Settings) -> list[Problem]:
    """Combinations AWS would refuse half-way through a deployment."""
    p = s.project + ":"
    problems = []

    def problem(key, value, why, allowed):
        problems.append(Problem(p + key, value, why, allowed))

    net, db, cache = s.network, s.database, s.cache
    # The prefix names the database, the cache and the vaults: RDS and ElastiCache take lowercase letters, digits
    # and single hyphens, and a replication group id of at most 40 characters ("<prefix>-redis").
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", s.name_prefix) or len(s.name_prefix) > 34:
        problems.append(Problem("project and stack name", s.name_prefix, "names the database, cache and vaults, "
                                "which RDS and ElastiCache would refuse", "lowercase letters, digits and single "
                                "hyphens, starting with a letter, at most 34 characters for <project>-<stack>"))
    vpc = ipaddress.ip_network(net.cidr)
    if net.subnet_prefix_length < vpc.prefixlen:
        problem("network.subnetPrefixLength", net.subnet_prefix_length, f"subnets cannot be larger than the VPC "
                f"({net.cidr})", f"{vpc.prefixlen}..28")
    elif 3 * net.az_count > 2 ** (net.subnet_prefix_length - vpc.prefixlen):
        fits = 2 ** (net.subnet_prefix_length - vpc.prefixlen)
        problem("network.cidr", net.cidr, f"room for {fits} /{net.subnet_prefix_length} subnets, "
                f"{3 * net.az_count} needed (3 per AZ x {net.az_count} AZs)",
                f"a larger VPC, a longer subnetPrefixLength (e.g. /{vpc.prefixlen + _bits(3 * net.az_count)}) "
                "or fewer AZs")
    if net.az_count < 2:
        why = "staging and prod need at least 2 AZs" if s.tier != "dev" else \
            "the RDS subnet group and the load balancer need subnets in at least 2 AZs"
        problem("network.azCount", net.az_count, why, "2..6")

    if db.replicas > 0 and db.backup_retention_days == 0:
        problem("database.backupRetentionDays", 0, "RDS creates read replicas only from a source with automated "
                "backups", "1..35 while database.replicas > 0")
    if db.max_allocated_storage and db.max_allocated_storage <= db.allocated_storage:
        problem("database.maxAllocatedStorage", db.max_allocated_storage, "the autoscaling ceiling must be above "
                f"allocatedStorage ({db.allocated_storage})", f"0 or more than {db.allocated_storage}")
    if overlaps(db.backup_window, db.maintenance_window):
        problem("database.backupWindow", db.backup_window, f"overlaps the maintenance window "
                f"({db.maintenance_window}); RDS rejects that", "a window outside the maintenance window")

    if cache.automatic_failover and cache.nodes < 2:
        problem("cache.nodes", cache.nodes, "automatic failover needs a replica to promote", "2..6 while "
                "cache.automaticFailover is true")
    if cache.multi_az and not cache.automatic_failover:
        problem("cache.multiAz", True, "ElastiCache Multi-AZ requires automatic failover", "false, or "
                "cache.automaticFailover: true")
    if overlaps(cache.snapshot_window, cache.maintenance_window):
        problem("cache.snapshotWindow", cache.snapshot_window, f"overlaps the maintenance window "
                f"({cache.maintenance_window}); ElastiCache rejects that", "a window outside the maintenance window")

    roles = {"database.username": db.username, "database.ownerRole": db.owner_role,
             "database.runtimeRole": db.runtime_role, "database.backupRole": db.backup_role,
             "database.drillRole": db.drill_role}
    taken: dict[str, str] = {}
    for key, role in roles.items():
        if role in taken:
            problem(key, role, f"the same login as {taken[role]}: each role has its own", "a name no other role has")
        taken.setdefault(role, key)
    clone = db.runtime_role + "_clone"
    if clone in taken:
        problem(taken[clone], clone, "AWS's multi-user rotation of runtimeRole creates a login of this name",
                "another name")
    shared = (rotation_hours(s.secrets.rotation_schedule) or set()) & (
        rotation_hours(s.secrets.master_rotation_schedule) or set())
    if shared or s.secrets.rotation_schedule == s.secrets.master_rotation_schedule:
        problem("secrets.masterRotationSchedule", s.secrets.master_rotation_schedule, "the runtime login's rotation "
                f"logs in as the master: the two must not open a window at the same hour ({sorted(shared)} UTC)",
                "a cron() at an hour secrets.rotationSchedule never opens a window at")

    snap = s.snapshots
    if not snap.lock_min_retention_days <= snap.retention_days <= snap.lock_max_retention_days:
        problem("snapshots.retentionDays", snap.retention_days, "the vault lock fails every backup and copy job kept "
                f"outside {snap.lock_min_retention_days}..{snap.lock_max_retention_days} days (lockMinRetentionDays.."
                "lockMaxRetentionDays)", f"{snap.lock_min_retention_days}..{snap.lock_max_retention_days}, or move "
                "the lock's bounds")

    if s.snapshots.copy_region and s.snapshots.copy_region == s.region:
        problem("snapshots.copyRegion", s.snapshots.copy_region, "a copy in the same region does not survive a "
                "regional outage", f"a region other than {s.region}, or empty")
    return problems


def tier_requirements(s: Settings) -> list[Problem]:
    """The values the stack's tier insists on; the policy pack checks the declared resources for the same."""
    problems = []
    for requirement in tiers.REQUIREMENTS:
        if requirement.applies(s.tier):
            value = value_at(s, requirement.key)
            if not requirement.met(s.tier, value):
                problems.append(Problem(f"{s.project}:{requirement.key}", value, *requirement.explain(s.tier)))
    return problems


def serving_checks(s: Settings) -> list[Problem]:
    """The values that must agree across the load balancer, ECS, Gunicorn and the database."""
    p = s.project + ":"
    problems = []

    def problem(key, value, why, allowed):
        problems.append(Problem(p + key, value, why, allowed))

    lb, svc, db = s.load_balancer, s.service, s.database
    if not lb.https and not lb.allow_http:
        problem("loadBalancer.domain", lb.domain, "HTTPS needs a certificate", "certificateArn, or domain with "
                "hostedZoneId (a DNS-validated certificate), or allowHttp: true in dev")
    if lb.domain and not (lb.hosted_zone_id or lb.certificate_arn):
        problem("loadBalancer.hostedZoneId", lb.hosted_zone_id, f"no way to get a certificate for {lb.domain}",
                "the Route 53 zone id of the domain, or loadBalancer.certificateArn")
    if (lb.certificate_arn or lb.hosted_zone_id) and not lb.domain:
        problem("loadBalancer.domain", "", "a certificate and a DNS record need the domain they are for",
                "the public DNS name of the service")
    if lb.health_check_timeout_seconds >= lb.health_check_interval_seconds:
        problem("loadBalancer.healthCheckTimeoutSeconds", lb.health_check_timeout_seconds,
                "must be shorter than the interval", f"less than {lb.health_check_interval_seconds}")

    if s.firewall.mode != "off" and s.service.max_body_bytes > WAF_ALB_BODY_LIMIT_BYTES:
        problem("service.maxBodyBytes", s.service.max_body_bytes, "the load balancer hands AWS WAF only the first "
                f"{WAF_ALB_BODY_LIMIT_BYTES} bytes of a body: the rest would reach the application uninspected",
                f"at most {WAF_ALB_BODY_LIMIT_BYTES} while firewall.mode is {s.firewall.mode}")

    if svc.keepalive_seconds <= lb.idle_timeout_seconds:
        problem("service.keepaliveSeconds", svc.keepalive_seconds, f"Gunicorn closing idle connections before the "
                f"load balancer does ({lb.idle_timeout_seconds} s) gives intermittent 502s",
                f"more than loadBalancer.idleTimeoutSeconds ({lb.idle_timeout_seconds})")
    if svc.graceful_timeout_seconds >= svc.stop_timeout_seconds:
        problem("service.gracefulTimeoutSeconds", svc.graceful_timeout_seconds, "ECS kills the container "
                f"after stopTimeoutSeconds ({svc.stop_timeout_seconds} s), cutting requests Gunicorn still "
                "finishes", f"less than service.stopTimeoutSeconds ({svc.stop_timeout_seconds})")
    # A new task is healthy for the load balancer after start-up plus `healthyThreshold` passing checks; ECS
    # ignores failing checks only during the grace period, so the period must cover both.
    ready = svc.startup_seconds + lb.healthy_threshold * lb.health_check_interval_seconds
    if svc.health_check_grace_period_seconds < ready:
        problem("service.healthCheckGracePeriodSeconds", svc.health_check_grace_period_seconds, "ECS would "
                f"replace tasks before the load balancer can find them healthy: startupSeconds "
                f"{svc.startup_seconds} + healthyThreshold {lb.healthy_threshold} x interval "
                f"{lb.health_check_interval_seconds} s = {ready} s", f"at least {ready}, or a faster start-up or "
                "health check")
    if svc.spot_weight and s.image.platform == "linux/arm64":
        problem("service.spotWeight", svc.spot_weight, "Fargate Spot does not run Linux ARM64 tasks",
                "0, or image.platform: linux/amd64")
    if svc.min_tasks > svc.max_tasks:
        problem("service.maxTasks", svc.max_tasks, f"below minTasks ({svc.min_tasks})", f">= {svc.min_tasks}")
    for group, task in (("service", svc), ("backups", s.backups)):
        if task.memory not in sizing.FARGATE_MEMORY.get(task.cpu, []):
            options = sizing.FARGATE_MEMORY.get(task.cpu, [])
            problem(f"{group}.memory", task.memory, f"not a Fargate size for cpu {task.cpu}",
                    f"{options[0]}..{options[-1]} in steps of {options[1] - options[0]}" if options else "see cpu")

    if db.engine_version.split(".")[0] != POSTGRES_MAJOR:
        problem("database.engineVersion", db.engine_version, f"the image's PostgreSQL client and the roles command "
                f"are {POSTGRES_MAJOR}'s: pg_dump refuses a newer server", f"{POSTGRES_MAJOR} or {POSTGRES_MAJOR}.x, "
                "or upgrade the image's client and the roles command with it")
    per_database = sizing.connections(svc.max_tasks, svc.workers, svc.db_pool_size, svc.db_max_overflow)
    classes = [("database.instanceClass", db.instance_class)]
    if db.replicas:
        classes.append(("database.replicaInstanceClass", db.replica_class))
    for key, instance_class in classes:
        budget = sizing.connection_budget(instance_class)
        if budget is None:
            problem(key, instance_class, "no memory figure for this class, so the connection budget cannot be "
                    "checked", sizing.known_instance_classes())
        elif per_database > budget:
            fits = budget // (svc.max_tasks * svc.workers)
            problem("service.dbPoolSize", svc.db_pool_size, f"connection budget: maxTasks {svc.max_tasks} x "
                    f"workers {svc.workers} x (dbPoolSize {svc.db_pool_size} + dbMaxOverflow "
                    f"{svc.db_max_overflow}) = {per_database} exceeds {sizing.BUDGET_PERCENT} % of "
                    f"{instance_class}'s max_connections ({sizing.max_connections(instance_class)})",
                    f"dbPoolSize + dbMaxOverflow <= {fits}, fewer tasks or workers, or a larger class")
    return problems


def _bits(count: int) -> int:
    return max(1, (count - 1).bit_length())
