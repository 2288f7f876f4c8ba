"""Typed, validated settings for one stack: the tier's defaults overridden key by key by the stack file.

`load()` reads `pulumi.Config`; `from_config()` is the same without the Pulumi runtime (tests use it). Every problem
is collected and raised as one `SettingsError` that lists each key, its value, why it is wrong and what is allowed,
before any resource is declared. Components receive these objects; they never read config themselves.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import typing
from dataclasses import dataclass, field, fields, is_dataclass

from infra import sizing, tiers

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
NAT_MODES = ("none", "single", "perAz")
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
WEEKLY_WINDOW = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$"
)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --- checks on one value


def between(low: int, high: int):
    def check(value):
        if not low <= value <= high:
            return "out of range", f"{low}..{high}"
    return check


def one_of(*allowed):
    def check(value):
        if value not in allowed:
            return "not a supported value", ", ".join(str(a) for a in allowed)
    return check


def matches(pattern: str, allowed: str):
    regex = re.compile(pattern)

    def check(value):
        if not regex.match(value):
            return "malformed", allowed
    return check


def cidr_block(value):
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        return f"not a valid IPv4 network ({err})", "a network address with prefix, e.g. 10.20.0.0/16"
    if network.version != 4 or not 16 <= network.prefixlen <= 24:
        return "AWS takes VPC blocks from /16 to /28, and 3 subnets per AZ need at least a /24", \
            "an IPv4 CIDR from /16 to /24"


def daily_window(value):
    if not WINDOW.match(value) or _minutes(value) < 30:
        return "malformed or shorter than 30 minutes", "hh24:mi-hh24:mi in UTC, at least 30 minutes, e.g. 03:00-04:00"


def weekly_window(value):
    if not WEEKLY_WINDOW.match(value) or _weekly_range(value)[1] - _weekly_range(value)[0] < 60:
        return "malformed or shorter than 60 minutes", "ddd:hh24:mi-ddd:hh24:mi in UTC, at least 60 minutes, " \
            "e.g. sun:04:30-sun:05:30"


def region_name(value):
    if value and not REGION.match(value):
        return "not an AWS region name", "a region such as eu-west-1, or empty for none"


def setting(doc: str, check=None):
    """A settings field: its one-line documentation and an optional check of its value alone."""
    return field(metadata={"doc": doc, "check": check})


# --- the settings


@dataclass(frozen=True)
class NetworkSettings:
    cidr: str = setting("IPv4 CIDR of the VPC (/16 to /24); give each stack its own if they may ever be peered",
                        cidr_block)
    az_count: int = setting("availability zones to spread subnets over", between(1, 6))
    subnet_prefix_length: int = setting("prefix length of every subnet (3 per AZ: public, private, isolated)",
                                        between(16, 28))
    nat_gateways: str = setting("NAT gateways for the private subnets: none, single or perAz", one_of(*NAT_MODES))
    interface_endpoints: bool = setting("interface endpoints for ecr.api, ecr.dkr, logs and secretsmanager, so "
                                        "tasks start without NAT")
    flow_log_traffic_type: str = setting("traffic recorded by the VPC flow log", one_of("ALL", "ACCEPT", "REJECT"))


@dataclass(frozen=True)
class SecretsSettings:
    recovery_window_days: int = setting("days a deleted secret can be recovered (0 deletes at once)",
                                        lambda v: None if v == 0 or 7 <= v <= 30 else ("not accepted by Secrets "
                                                                                       "Manager", "0 or 7..30"))
    key_deletion_window_days: int = setting("days before a scheduled KMS key deletion takes effect", between(7, 30))


@dataclass(frozen=True)
class LogSettings:
    retention_days: int = setting("CloudWatch retention of every log group the stack creates",
                                  one_of(*LOG_RETENTION_DAYS))


@dataclass(frozen=True)
class DatabaseSettings:
    engine_version: str = setting("PostgreSQL version: a major (15) or major.minor (15.8)",
                                  matches(r"^\d{2}(\.\d+)?$", "a PostgreSQL version such as 15 or 15.8"))
    instance_class: str = setting("instance class of the primary",
                                  matches(r"^db\.[a-z0-9-]+\.[a-z0-9]+$", "an RDS class such as db.r6g.large"))
    replica_instance_class: str = setting("instance class of the read replicas (empty: as the primary)",
                                          matches(r"^(db\.[a-z0-9-]+\.[a-z0-9]+)?$",
                                                  "an RDS class such as db.r6g.large, or empty"))
    allocated_storage: int = setting("initial gp3 storage in GiB", between(20, 65536))
    max_allocated_storage: int = setting("storage autoscaling ceiling in GiB (0: no autoscaling)", between(0, 65536))
    multi_az: bool = setting("a synchronous standby in another AZ for the primary")
    replicas: int = setting("read replicas, spread across AZs", between(0, 5))
    backup_retention_days: int = setting("days of automated backups and point-in-time recovery", between(0, 35))
    backup_window: str = setting("daily automated backup window (UTC)", daily_window)
    maintenance_window: str = setting("weekly maintenance window (UTC)", weekly_window)
    deletion_protection: bool = setting("RDS refuses to delete the instances")
    performance_insights: bool = setting("Performance Insights, encrypted with the stack key")
    monitoring_interval: int = setting("enhanced monitoring interval in seconds (0: off)", one_of(0, 1, 5, 10, 15,
                                                                                                  30, 60))
    apply_immediately: bool = setting("apply modifications now rather than in the maintenance window")
    db_name: str = setting("name of the application database", matches(r"^[a-z][a-z0-9_]{0,62}$",
                                                                       "lowercase letters, digits, _; 1-63 chars"))
    username: str = setting("master user name", matches(r"^[a-z][a-z0-9_]{0,62}$",
                                                        "lowercase letters, digits, _; 1-63 chars, not a reserved "
                                                        "name"))
    log_min_duration_ms: int = setting("log statements slower than this (-1: off)", between(-1, 3_600_000))


@dataclass(frozen=True)
class CacheSettings:
    engine_version: str = setting("Redis OSS engine version (major.minor)",
                                  matches(r"^[67]\.\d$", "a Redis OSS version such as 7.1"))
    node_type: str = setting("node type of every cache node",
                             matches(r"^cache\.[a-z0-9-]+\.[a-z0-9]+$", "an ElastiCache type such as cache.r7g.large"))
    nodes: int = setting("cache nodes: one primary, the rest replicas", between(1, 6))
    automatic_failover: bool = setting("promote a replica when the primary fails (needs 2+ nodes)")
    multi_az: bool = setting("place replicas in other AZs than the primary (needs automatic failover)")
    snapshot_retention_days: int = setting("days of daily cache snapshots (0: none)", between(0, 35))
    snapshot_window: str = setting("daily snapshot window (UTC)", daily_window)
    maintenance_window: str = setting("weekly maintenance window (UTC)", weekly_window)
    apply_immediately: bool = setting("apply modifications now rather than in the maintenance window")


@dataclass(frozen=True)
class BackupPlanSettings:
    enabled: bool = setting("an AWS Backup plan taking snapshots of the primary database")
    schedule: str = setting("when the plan runs, an AWS cron expression",
                            matches(r"^cron\(.+\)$", "cron(...) as AWS Backup takes it, e.g. cron(0 7 ? * * *)"))
    retention_days: int = setting("days a snapshot is kept", between(1, 36500))
    copy_region: str = setting("second region that receives a copy of each snapshot (empty: none)", region_name)


@dataclass(frozen=True)
class BackupsSettings:
    enabled: bool = setting("logical backups (pg_dump) to an S3 bucket by a scheduled task, and the restore drill")
    schedule: str = setting("when the backup task runs (EventBridge Scheduler, UTC); it prunes after each backup",
                            matches(r"^(cron|rate)\(.+\)$", "cron(...) or rate(...), e.g. cron(30 2 * * ? *)"))
    drill_schedule: str = setting("when the restore drill runs: backup, restore into a scratch database, compare "
                                  "(empty: never)", matches(r"^((cron|rate)\(.+\))?$", "cron(...), rate(...) or "
                                                            "empty"))
    retention_days: int = setting("days a backup is kept (the newest is always kept)", between(1, 3650))
    noncurrent_days: int = setting("days a pruned or overwritten backup object stays recoverable (versioning)",
                                   between(1, 3650))
    cpu: int = setting("CPU units of the backup and drill tasks", one_of(*sizing.FARGATE_MEMORY))
    memory: int = setting("memory of the backup and drill tasks in MiB (a Fargate pair with cpu)",
                          between(512, 122880))
    ephemeral_storage_gib: int = setting("task disk: the drill downloads the dump before restoring it",
                                         between(21, 200))
    part_size_mb: int = setting("upload part size (BACKUP_PART_SIZE_MB); S3 takes at most 10 000 parts, so this "
                                "caps a dump at 10 000 x part size", between(5, 5120))


def emails(value: list[str]) -> tuple[str, str] | None:
    bad = [v for v in value if not re.match(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", v, re.IGNORECASE)]
    return ("not an email address: " + ", ".join(bad), "addresses such as ops@example.com") if bad else None


@dataclass(frozen=True)
class MonitoringSettings:
    alarm_emails: list[str] = setting("addresses the alarm topic mails (each confirms its subscription once)", emails)
    http_5xx_percent: int = setting("alarm: 5xx answers (application and load balancer) as % of requests",
                                    between(1, 100))
    p99_response_ms: int = setting("alarm: p99 target response time in milliseconds", between(10, 120000))
    task_cpu_percent: int = setting("alarm: average CPU of the service's tasks, %", between(10, 100))
    task_memory_percent: int = setting("alarm: average memory of the service's tasks, %", between(10, 100))
    database_cpu_percent: int = setting("alarm: CPU of the busiest database instance, %", between(10, 100))
    database_free_storage_percent: int = setting("alarm: free storage of any database instance below this % of "
                                                 "allocatedStorage (below storage autoscaling's own 10 %: the alarm "
                                                 "means autoscaling did not keep up or hit its ceiling)",
                                                 between(1, 90))
    database_connections_percent: int = setting("alarm: connections of any database instance as % of its "
                                                "max_connections (the connection budget allows 80)",
                                                between(10, 100))
    replica_lag_seconds: int = setting("alarm: replica lag of the slowest replica, seconds", between(1, 3600))
    cache_cpu_percent: int = setting("alarm: Redis engine CPU of the busiest node, %", between(10, 100))
    cache_memory_percent: int = setting("alarm: Redis memory use of the fullest node, %", between(10, 100))
    cache_evictions: int = setting("alarm: keys evicted per 5 minutes on any node", between(1, 1_000_000))


@dataclass(frozen=True)
class ImageSettings:
    uri: str = setting("prebuilt image by digest (what CI deploys); empty: build app/Dockerfile and push to ECR",
                       matches(r"^([a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64})?$",
                               "<registry>/<repository>@sha256:<64 hex digits>, or empty"))
    platform: str = setting("image platform: linux/arm64 (Graviton) or linux/amd64", one_of("linux/arm64",
                                                                                            "linux/amd64"))
    keep_images: int = setting("images the ECR lifecycle policy keeps", between(1, 1000))


@dataclass(frozen=True)
class LoadBalancerSettings:
    domain: str = setting("public name of the service (empty: the load balancer's DNS name)",
                          matches(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$|^$", "a DNS name, or empty"))
    hosted_zone_id: str = setting("Route 53 zone of the domain: DNS-validated certificate and alias record",
                                  matches(r"^(Z[A-Z0-9]{5,31})?$", "a hosted zone id such as Z0123456789ABC, or empty"))
    certificate_arn: str = setting("an existing ACM certificate for the domain (instead of a new DNS-validated one)",
                                   matches(r"^(arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+)?$",
                                           "an ACM certificate ARN, or empty"))
    allow_http: bool = setting("serve plain HTTP when there is no certificate (dev only; the plan flags it)")
    ssl_policy: str = setting("TLS policy of the HTTPS listener",
                              matches(r"^ELBSecurityPolicy-TLS13-", "an ELBSecurityPolicy-TLS13-* policy"))
    idle_timeout_seconds: int = setting("idle connection timeout", between(1, 4000))
    deletion_protection: bool = setting("AWS refuses to delete the load balancer")
    health_check_path: str = setting("the application's liveness path", matches(r"^/", "a path starting with /"))
    health_check_interval_seconds: int = setting("seconds between target health checks", between(5, 300))
    health_check_timeout_seconds: int = setting("seconds a health check may take", between(2, 120))
    healthy_threshold: int = setting("passing checks before a target receives traffic", between(2, 10))
    unhealthy_threshold: int = setting("failing checks before a target is taken out", between(2, 10))
    deregistration_delay_seconds: int = setting("seconds a draining target keeps its in-flight requests",
                                                between(0, 30))
    slow_start_seconds: int = setting("seconds a new target's share of traffic ramps up (0: off)",
                                      lambda v: None if v == 0 or 30 <= v <= 900 else ("not accepted by ELB",
                                                                                       "0 or 30..900"))

    @property
    def https(self) -> bool:
        """Is there, or will there be, a certificate to serve HTTPS with?"""
        return bool(self.certificate_arn or (self.domain and self.hosted_zone_id))


@dataclass(frozen=True)
class ServiceSettings:
    cpu: int = setting("task CPU units (1024 = 1 vCPU)", one_of(*sizing.FARGATE_MEMORY))
    memory: int = setting("task memory in MiB (a Fargate pair with cpu)", between(512, 122880))
    port: int = setting("port Gunicorn binds in the container", between(1024, 65535))
    min_tasks: int = setting("fewest running tasks (autoscaling floor)", between(1, 1000))
    max_tasks: int = setting("most running tasks (autoscaling ceiling)", between(1, 1000))
    workers: int = setting("Gunicorn worker processes per task (WEB_CONCURRENCY)", between(1, 64))
    threads: int = setting("threads per Gunicorn worker (gthread)", between(1, 64))
    db_pool_size: int = setting("SQLAlchemy pool size per worker process (DB_POOL_SIZE)", between(1, 100))
    db_max_overflow: int = setting("extra connections per worker process under load (DB_MAX_OVERFLOW)",
                                   between(0, 100))
    keepalive_seconds: int = setting("Gunicorn keep-alive; must outlast the load balancer's idle timeout",
                                     between(1, 4000))
    timeout_seconds: int = setting("Gunicorn worker timeout", between(5, 3600))
    graceful_timeout_seconds: int = setting("seconds Gunicorn lets in-flight requests finish after SIGTERM",
                                            between(1, 119))
    stop_timeout_seconds: int = setting("seconds ECS waits after SIGTERM before SIGKILL (at most 120)",
                                        between(2, 120))
    startup_seconds: int = setting("seconds a new task needs before /health answers (the container health "
                                   "check's start period, which ECS caps at 300)", between(1, 300))
    health_check_grace_period_seconds: int = setting("seconds ECS ignores failing health checks of a new task",
                                                     between(0, 3600))
    spot_weight: int = setting("share of tasks on Fargate Spot against 1 on Fargate (0: none)", between(0, 10))
    ecs_exec: bool = setting("allow `aws ecs execute-command` into the tasks")
    cpu_target: int = setting("target average CPU % for autoscaling", between(10, 90))
    memory_target: int = setting("target average memory % for autoscaling", between(10, 90))
    requests_per_target: int = setting("target requests per task per minute (ALBRequestCountPerTarget)",
                                       between(1, 1_000_000))
    scale_in_cooldown_seconds: int = setting("seconds between scale-in steps", between(0, 3600))
    scale_out_cooldown_seconds: int = setting("seconds between scale-out steps", between(0, 3600))
    app_env: str = setting("the application's config class (APP_ENV); deployed stacks run staging or production",
                           one_of("staging", "production"))
    log_level: str = setting("application log level (LOG_LEVEL)", one_of("DEBUG", "INFO", "WARNING", "ERROR"))
    run_migrations: bool = setting("each task runs the locked database migration before Gunicorn starts")


@dataclass(frozen=True)
class Settings:
    """Everything one stack needs. `project`, `stack`, `region` and `tier` come from the context, the rest from
    the tier defaults and the stack file."""

    project: str = field(metadata={"context": True})
    stack: str = field(metadata={"context": True})
    region: str = field(metadata={"context": True})
    tier: str = setting("which defaults apply: dev, staging or prod (default: the stack's name)")
    tags: dict[str, str] = setting("extra tags for every resource, beside Project, Stack, Environment, ManagedBy")
    protect: bool = setting("protect stateful resources (database, cache, key, secrets, vault) against "
                            "`pulumi destroy`")
    network: NetworkSettings = setting("the VPC")
    secrets: SecretsSettings = setting("the stack key and the secrets")
    logs: LogSettings = setting("log groups")
    database: DatabaseSettings = setting("RDS PostgreSQL")
    cache: CacheSettings = setting("ElastiCache Redis")
    backup_plan: BackupPlanSettings = setting("AWS Backup snapshots of the database")
    backups: BackupsSettings = setting("logical backups of the database to S3 and the restore drill")
    monitoring: MonitoringSettings = setting("alarms to an encrypted SNS topic, and a dashboard")
    image: ImageSettings = setting("the application image")
    load_balancer: LoadBalancerSettings = setting("the Application Load Balancer")
    service: ServiceSettings = setting("the ECS Fargate service running Gunicorn")

    @property
    def name_prefix(self) -> str:
        """Prefix of physical names, so two stacks in one account never collide."""
        return f"{self.project}-{self.stack}"

    @property
    def default_tags(self) -> dict[str, str]:
        return {
            **self.tags,
            "Project": self.project,
            "Stack": self.stack,
            "Environment": self.tier,
            "ManagedBy": "pulumi",
        }


# --- the errors


@dataclass(frozen=True)
class Problem:
    key: str
    value: object
    why: str
    allowed: str

    def __str__(self) -> str:
        shown = json.dumps(self.value) if self.value is not _MISSING else "(not set)"
        return f"{self.key} = {shown}: {self.why}. Allowed: {self.allowed}."


class SettingsError(Exception):
    """Invalid stack configuration: every problem, listed."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.stack = stack
        self.problems = problems
        lines = [f"Invalid configuration for stack '{stack}' ({len(problems)} problem"
                 f"{'s' if len(problems) != 1 else ''}):"]
        lines += [f"  - {p}" for p in problems]
        lines.append("Fix these in Pulumi.<stack>.yaml (or with `pulumi config set --path`); "
                     "the configuration reference is in README.md.")
        super().__init__("\n".join(lines))


_MISSING = object()


# --- loading


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def config_fields(cls) -> list:
    return [f for f in fields(cls) if not f.metadata.get("context")]


def load() -> Settings:
    """Settings of the running Pulumi stack (real engine or mocks)."""
    import pulumi

    project = pulumi.get_project()
    raw = {}
    all_config = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    for key, value in all_config.items():
        namespace, _, name = key.partition(":")
        if namespace == project:
            raw[name] = value
    return from_config(project, pulumi.get_stack(), pulumi.Config("aws").get("region"), raw)


def from_config(project: str, stack: str, region: str | None, raw: dict[str, object]) -> Settings:
    """Build and validate settings from the project's config values (strings, as the CLI passes them, or values)."""
    problems: list[Problem] = []
    if not region:
        problems.append(Problem("aws:region", _MISSING, "no region for the AWS provider",
                                "a region such as eu-west-1 (pulumi config set aws:region eu-west-1)"))
    elif not REGION.match(region):
        problems.append(Problem("aws:region", region, "not an AWS region name", "a region such as eu-west-1"))

    tier = _text(raw.get("tier", stack if stack in tiers.TIERS else _MISSING))
    if tier not in tiers.TIERS:
        problems.append(Problem(f"{project}:tier", tier, "no tier defaults to start from",
                                ", ".join(tiers.TIERS) + " (defaults to the stack name when it is one of them)"))
        raise SettingsError(stack, problems)

    defaults = {**tiers.defaults(tier), "tier": tier}
    values = tiers.merge(defaults, {k: _decode(v) for k, v in raw.items()})
    parsed = _parse(Settings, values, defaults, project + ":", problems)
    settings = Settings(project=project, stack=stack, region=region or "", **parsed)
    # Cross checks run on the valid values, a bad value replaced by its tier default, so that every problem is
    # listed at once; a key already reported is not reported twice.
    reported = {p.key for p in problems}
    problems += [p for p in cross_checks(settings) if p.key not in reported]
    if problems:
        raise SettingsError(stack, problems)
    return settings


def _text(value):
    return value.strip('"') if isinstance(value, str) else value


def _decode(value):
    """Top-level config values arrive as strings; objects, lists, numbers and booleans as their JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _parse(cls, values: dict, fallback: dict, prefix: str, problems: list[Problem]) -> dict:
    """Type-check and check each field of a settings class; a wrong value is reported and its fallback used."""
    known = {camel(f.name): f for f in config_fields(cls)}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(Problem(prefix + key, value, "unknown key" + hint, "one of " + ", ".join(sorted(known))))
    hints = typing.get_type_hints(cls)
    good = {}
    for key, f in known.items():
        value, kind = values.get(key, _MISSING), hints[f.name]
        if is_dataclass(kind):
            if not isinstance(value, dict):
                problems.append(Problem(prefix + key, value, "must be an object", "the keys of " + key))
                value = fallback[key]
            good[f.name] = kind(**_parse(kind, value, fallback[key], f"{prefix}{key}.", problems))
            continue
        if not _is_type(value, kind):
            problems.append(Problem(prefix + key, value, "wrong type", _type_name(kind)))
            value = fallback[key]
        elif f.metadata.get("check") and (found := f.metadata["check"](value)):
            problems.append(Problem(prefix + key, value, *found))
            value = fallback[key]
        good[f.name] = value
    return good


def _is_type(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if typing.get_origin(kind) is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if typing.get_origin(kind) is list:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    raise TypeError(f"unsupported settings type {kind}")


def _type_name(kind) -> str:
    if typing.get_origin(kind) is list:
        return "a list of strings"
    return {bool: "true or false", int: "a whole number", str: 'a string (quote numbers, e.g. "15")'}.get(
        kind, "a map of strings to strings")


# --- checks across values and tiers


def cross_checks(s: Settings) -> list[Problem]:
    """Rules that involve more than one value, or the tier. One rule, one problem."""
    p = s.project + ":"
    problems = []

    def problem(key, value, why, allowed):
        problems.append(Problem(p + key, value, why, allowed))

    net, db, cache = s.network, s.database, s.cache
    # The prefix names the database, the cache and the vaults: RDS and ElastiCache take lowercase letters, digits
    # and single hyphens, and a replication group id of at most 40 characters ("<prefix>-redis").
    if not re.match(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", s.name_prefix) or len(s.name_prefix) > 34:
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
    if s.tier == "prod" and db.backup_retention_days < 7:
        problem("database.backupRetentionDays", db.backup_retention_days, "prod keeps at least a week of backups",
                "7..35")
    if s.tier == "prod" and not db.deletion_protection:
        problem("database.deletionProtection", False, "prod databases are deletion-protected", "true")
    if db.max_allocated_storage and db.max_allocated_storage <= db.allocated_storage:
        problem("database.maxAllocatedStorage", db.max_allocated_storage, "the autoscaling ceiling must be above "
                f"allocatedStorage ({db.allocated_storage})", f"0 or more than {db.allocated_storage}")
    if _overlaps(db.backup_window, db.maintenance_window):
        problem("database.backupWindow", db.backup_window, f"overlaps the maintenance window "
                f"({db.maintenance_window}); RDS rejects that", "a window outside the maintenance window")

    if cache.automatic_failover and cache.nodes < 2:
        problem("cache.nodes", cache.nodes, "automatic failover needs a replica to promote", "2..6 while "
                "cache.automaticFailover is true")
    if cache.multi_az and not cache.automatic_failover:
        problem("cache.multiAz", True, "ElastiCache Multi-AZ requires automatic failover", "false, or "
                "cache.automaticFailover: true")
    if _overlaps(cache.snapshot_window, cache.maintenance_window):
        problem("cache.snapshotWindow", cache.snapshot_window, f"overlaps the maintenance window "
                f"({cache.maintenance_window}); ElastiCache rejects that", "a window outside the maintenance window")

    plan = s.backup_plan
    if plan.copy_region and plan.copy_region == s.region:
        problem("backupPlan.copyRegion", plan.copy_region, "a copy in the same region does not survive a regional "
                "outage", f"a region other than {s.region}, or empty")
    if s.tier == "prod" and not (plan.enabled and plan.copy_region):
        problem("backupPlan.copyRegion", plan.copy_region, "prod keeps a copy of its snapshots in a second region",
                "a region other than aws:region, with backupPlan.enabled: true")
    if s.tier != "dev" and not s.monitoring.alarm_emails:
        problem("monitoring.alarmEmails", [], f"{s.tier} alarms must reach someone", "one or more addresses")
    problems += serving_checks(s)
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
    if lb.allow_http and s.tier != "dev":
        problem("loadBalancer.allowHttp", True, f"{s.tier} serves HTTPS only", "false")
    if lb.domain and not (lb.hosted_zone_id or lb.certificate_arn):
        problem("loadBalancer.hostedZoneId", lb.hosted_zone_id, f"no way to get a certificate for {lb.domain}",
                "the Route 53 zone id of the domain, or loadBalancer.certificateArn")
    if (lb.certificate_arn or lb.hosted_zone_id) and not lb.domain:
        problem("loadBalancer.domain", "", "a certificate and a DNS record need the domain they are for",
                "the public DNS name of the service")
    if lb.health_check_timeout_seconds >= lb.health_check_interval_seconds:
        problem("loadBalancer.healthCheckTimeoutSeconds", lb.health_check_timeout_seconds,
                "must be shorter than the interval", f"less than {lb.health_check_interval_seconds}")

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

    per_database = svc.max_tasks * svc.workers * (svc.db_pool_size + svc.db_max_overflow)
    classes = [("database.instanceClass", db.instance_class)]
    if db.replicas:
        classes.append(("database.replicaInstanceClass", db.replica_instance_class or db.instance_class))
    for key, instance_class in classes:
        limit = sizing.max_connections(instance_class)
        if limit is None:
            problem(key, instance_class, "no memory figure for this class, so the connection budget cannot be "
                    "checked", sizing.known_instance_classes())
        elif per_database > sizing.CONNECTION_BUDGET_SHARE * limit:
            fits = int(sizing.CONNECTION_BUDGET_SHARE * limit) // (svc.max_tasks * svc.workers)
            problem("service.dbPoolSize", svc.db_pool_size, f"connection budget: maxTasks {svc.max_tasks} x "
                    f"workers {svc.workers} x (dbPoolSize {svc.db_pool_size} + dbMaxOverflow "
                    f"{svc.db_max_overflow}) = {per_database} exceeds 80 % of {instance_class}'s max_connections "
                    f"({limit})", f"dbPoolSize + dbMaxOverflow <= {fits}, fewer tasks or workers, or a larger "
                    "class")
    return problems


def _bits(count: int) -> int:
    return max(1, (count - 1).bit_length())


def _minutes(window: str) -> int:
    start, end = window.split("-")
    to_min = [int(t.split(":")[0]) * 60 + int(t.split(":")[1]) for t in (start, end)]
    return (to_min[1] - to_min[0]) % (24 * 60)


def _weekly_range(window: str) -> tuple[int, int]:
    start, end = window.split("-")

    def at(t):
        day, hour, minute = t.split(":")
        return DAYS.index(day) * 1440 + int(hour) * 60 + int(minute)
    first, last = at(start), at(end)
    return first, last if last > first else last + 7 * 1440


def _overlaps(daily: str, weekly: str) -> bool:
    """Does a daily window (hh:mm-hh:mm) fall, on any day, into a weekly window (ddd:hh:mm-ddd:hh:mm)?"""
    start, end = _weekly_range(weekly)
    first = int(daily[:2]) * 60 + int(daily[3:5])
    length = _minutes(daily)
    for day in range(-1, 8):
        begin = day * 1440 + first
        if begin < end and start < begin + length:
            return True
    return False


def reference() -> str:
    """The configuration reference as a Markdown table, generated from the settings classes and tier defaults."""
    rows = ["| key | meaning | dev | staging | prod |", "|---|---|---|---|---|"]
    defaults = {tier: tiers.defaults(tier) for tier in tiers.TIERS}

    def walk(cls, path, per_tier):
        cls_hints = typing.get_type_hints(cls)
        for f in config_fields(cls):
            key = path + camel(f.name)
            if is_dataclass(cls_hints[f.name]):
                walk(cls_hints[f.name], key + ".", {t: v.get(camel(f.name), {}) for t, v in per_tier.items()})
                continue
            cells = [_cell(per_tier[t].get(camel(f.name), _MISSING)) for t in tiers.TIERS]
            if key == "tier":
                cells = list(tiers.TIERS)
            rows.append(f"| `{key}` | {f.metadata['doc']} | " + " | ".join(cells) + " |")

    walk(Settings, "", defaults)
    return "\n".join(rows)


def _cell(value) -> str:
    if value is _MISSING:
        return "(required)"
    if value == "" or value == {}:
        return "(empty)"
    return "`" + json.dumps(value).strip('"') + "`"
