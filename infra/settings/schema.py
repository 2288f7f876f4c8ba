"""The settings of one stack, as frozen dataclasses: one field per key of the stack file (camelCase there), each
with its one-line documentation, the check of its value alone, and, where it decides which resources exist, its
`shape` (what of the value decides it; the parity report moves these one at a time to explain a difference).

The dataclasses are the schema: loading (load.py), the rules across values (checks.py) and the configuration
reference in README.md (reference.py) all walk them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from infra import sizing
from infra.settings.values import (
    LOG_RETENTION_DAYS,
    NAT_MODES,
    between,
    cidr_block,
    daily_window,
    emails,
    matches,
    one_of,
    region_name,
    rotation_schedule,
    weekly_window,
    zero_or_between,
)


def same(value):
    """The shape of a setting whose every value is its own shape (a count, a mode, a switch)."""
    return value


def setting(doc: str, check=None, shape=None):
    """A settings field: its one-line documentation, an optional check of its value alone, and an optional shape."""
    return field(metadata={"doc": doc, "check": check, "shape": shape})


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def config_fields(cls) -> list:
    """The fields a stack file sets (not project, stack and region, which come from the context)."""
    return [f for f in fields(cls) if not f.metadata.get("context")]


def value_at(settings, key: str):
    """The value of a dotted camelCase key, e.g. value_at(s, "database.backupRetentionDays")."""
    value = settings
    for part in key.split("."):
        value = getattr(value, next(f.name for f in fields(value) if camel(f.name) == part))
    return value


@dataclass(frozen=True)
class NetworkSettings:
    cidr: str = setting("IPv4 CIDR of the VPC (/16 to /24); give each stack its own if they may ever be peered",
                        cidr_block)
    az_count: int = setting("availability zones to spread subnets over", between(1, 6), shape=same)
    subnet_prefix_length: int = setting("prefix length of every subnet (3 per AZ: public, private, isolated)",
                                        between(16, 28))
    nat_gateways: str = setting("NAT gateways for the private subnets: none, single or perAz", one_of(*NAT_MODES),
                                shape=same)
    interface_endpoints: bool = setting("interface endpoints for ecr.api, ecr.dkr, logs and secretsmanager, so "
                                        "tasks start without NAT", shape=same)
    flow_log_traffic_type: str = setting("traffic recorded by the VPC flow log", one_of("ALL", "ACCEPT", "REJECT"))


# A module name: inside SecretsSettings the field rotation_schedule would shadow the check's own name.
ROTATION_SCHEDULE = rotation_schedule
ROLE_NAME = matches(r"^(?!pg_)[a-z_][a-z0-9_]{0,56}$", "lowercase letters, digits and _, at most 57 characters (the "
                    "rotation's alternate login adds _clone), not starting with pg_")


@dataclass(frozen=True)
class SecretsSettings:
    recovery_window_days: int = setting("days a deleted secret can be recovered (0 deletes at once)",
                                        zero_or_between(7, 30, "not accepted by Secrets Manager"))
    key_deletion_window_days: int = setting("days before a scheduled KMS key deletion takes effect", between(7, 30))
    rotation_schedule: str = setting("when the application's database logins and the Flask key set rotate (UTC; a "
                                     "one-hour window)", ROTATION_SCHEDULE)
    master_rotation_schedule: str = setting("when the master login rotates (UTC; a one-hour window apart from "
                                            "rotationSchedule's: the runtime login's rotation uses the master login)",
                                            ROTATION_SCHEDULE)


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
    replicas: int = setting("read replicas, spread across AZs", between(0, 5), shape=same)
    backup_retention_days: int = setting("days of automated backups and point-in-time recovery", between(0, 35))
    backup_window: str = setting("daily automated backup window (UTC)", daily_window)
    maintenance_window: str = setting("weekly maintenance window (UTC)", weekly_window)
    deletion_protection: bool = setting("RDS refuses to delete the instances")
    performance_insights: bool = setting("Performance Insights, encrypted with the stack key")
    monitoring_interval: int = setting("enhanced monitoring interval in seconds (0: off)", one_of(0, 1, 5, 10, 15,
                                                                                                  30, 60), shape=bool)
    apply_immediately: bool = setting("apply modifications now rather than in the maintenance window")
    db_name: str = setting("name of the application database", matches(r"^[a-z][a-z0-9_]{0,62}$",
                                                                       "lowercase letters, digits, _; 1-63 chars"))
    username: str = setting("master user name: creates the roles below, serves nothing",
                            matches(r"^[a-z][a-z0-9_]{0,62}$", "lowercase letters, digits, _; 1-63 chars, not a "
                                    "reserved name"))
    owner_role: str = setting("role that owns the schema and runs the migrations", ROLE_NAME)
    runtime_role: str = setting("role the application serves with: reads and writes rows, nothing else", ROLE_NAME)
    backup_role: str = setting("role the backup task dumps with: reads everything, writes nothing", ROLE_NAME)
    drill_role: str = setting("role the restore drill uses: reads like the backup role, may create its scratch "
                              "database", ROLE_NAME)
    ssl_mode: str = setting("how the application verifies PostgreSQL's TLS (DATABASE_SSLMODE), against the RDS "
                            "certificate bundle in the image", one_of("verify-full", "verify-ca", "require"))
    log_min_duration_ms: int = setting("log statements slower than this (-1: off)", between(-1, 3_600_000))

    @property
    def replica_class(self) -> str:
        """The read replicas' instance class: replicaInstanceClass, or the primary's."""
        return self.replica_instance_class or self.instance_class


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
class SnapshotSettings:
    enabled: bool = setting("an AWS Backup plan taking snapshots of the primary database", shape=same)
    schedule: str = setting("when the plan runs, an AWS cron expression",
                            matches(r"^cron\(.+\)$", "cron(...) as AWS Backup takes it, e.g. cron(0 7 ? * * *)"))
    retention_days: int = setting("days a snapshot is kept", between(1, 36500))
    copy_region: str = setting("second region that receives a copy of each snapshot (empty: none)", region_name,
                               shape=bool)


@dataclass(frozen=True)
class BackupsSettings:
    enabled: bool = setting("logical backups (pg_dump) to an S3 bucket by a scheduled task, and the restore drill",
                            shape=same)
    schedule: str = setting("when the backup task runs (EventBridge Scheduler, UTC); it prunes after each backup",
                            matches(r"^(cron|rate)\(.+\)$", "cron(...) or rate(...), e.g. cron(30 2 * * ? *)"))
    drill_schedule: str = setting("when the restore drill runs: backup, restore into a scratch database, compare "
                                  "(empty: never)", matches(r"^((cron|rate)\(.+\))?$", "cron(...), rate(...) or "
                                                            "empty"), shape=bool)
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


@dataclass(frozen=True)
class MonitoringSettings:
    alarm_emails: list[str] = setting("addresses the alarm topic mails (each confirms its subscription once)", emails,
                                      shape=len)
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
                                                "max_connections (the connection budget allows "
                                                f"{sizing.BUDGET_PERCENT})",
                                                between(10, 100))
    replica_lag_seconds: int = setting("alarm: replica lag of the slowest replica, seconds", between(1, 3600))
    cache_cpu_percent: int = setting("alarm: Redis engine CPU of the busiest node, %", between(10, 100))
    cache_memory_percent: int = setting("alarm: Redis memory use of the fullest node, %", between(10, 100))
    cache_evictions: int = setting("alarm: keys evicted per 5 minutes on any node", between(1, 1_000_000))


@dataclass(frozen=True)
class ImageSettings:
    uri: str = setting("prebuilt image by digest (what CI deploys); empty: build app/Dockerfile and push to ECR",
                       matches(r"^([a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64})?$",
                               "<registry>/<repository>@sha256:<64 hex digits>, or empty"), shape=bool)
    platform: str = setting("image platform: linux/arm64 (Graviton) or linux/amd64", one_of("linux/arm64",
                                                                                            "linux/amd64"))
    keep_images: int = setting("images the ECR lifecycle policy keeps", between(1, 1000))

    @property
    def cpu_architecture(self) -> str:
        """The platform as ECS names it in a task definition's runtime platform."""
        return "ARM64" if self.platform == "linux/arm64" else "X86_64"


@dataclass(frozen=True)
class LoadBalancerSettings:
    domain: str = setting("public name of the service (empty: the load balancer's DNS name)",
                          matches(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$|^$", "a DNS name, or empty"),
                          shape=bool)
    hosted_zone_id: str = setting("Route 53 zone of the domain: DNS-validated certificate and alias record",
                                  matches(r"^(Z[A-Z0-9]{5,31})?$", "a hosted zone id such as Z0123456789ABC, or empty"),
                                  shape=bool)
    certificate_arn: str = setting("an existing ACM certificate for the domain (instead of a new DNS-validated one)",
                                   matches(r"^(arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+)?$",
                                           "an ACM certificate ARN, or empty"), shape=bool)
    allow_http: bool = setting("serve plain HTTP when there is no certificate (dev only; the plan flags it)")
    ssl_policy: str = setting("TLS policy of the HTTPS listener",
                              matches(r"ELBSecurityPolicy-TLS13-[A-Za-z0-9-]+", "an ELBSecurityPolicy-TLS13-* policy"))
    idle_timeout_seconds: int = setting("idle connection timeout", between(1, 4000))
    deletion_protection: bool = setting("AWS refuses to delete the load balancer")
    health_check_path: str = setting("the application's liveness path", matches(
        r"/[!-~]{0,1023}", "a path starting with /, printable ASCII without spaces, at most 1024 characters"))
    health_check_interval_seconds: int = setting("seconds between target health checks", between(5, 300))
    health_check_timeout_seconds: int = setting("seconds a health check may take", between(2, 120))
    healthy_threshold: int = setting("passing checks before a target receives traffic", between(2, 10))
    unhealthy_threshold: int = setting("failing checks before a target is taken out", between(2, 10))
    deregistration_delay_seconds: int = setting("seconds a draining target keeps its in-flight requests",
                                                between(0, 30))
    slow_start_seconds: int = setting("seconds a new target's share of traffic ramps up (0: off)",
                                      zero_or_between(30, 900, "not accepted by ELB"))

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
    ecs_exec: bool = setting("allow `aws ecs execute-command` into the tasks", shape=same)
    cpu_target: int = setting("target average CPU % for autoscaling", between(10, 90))
    memory_target: int = setting("target average memory % for autoscaling", between(10, 90))
    requests_per_target: int = setting("target requests per task per minute (ALBRequestCountPerTarget)",
                                       between(1, 1_000_000))
    scale_in_cooldown_seconds: int = setting("seconds between scale-in steps", between(0, 3600))
    scale_out_cooldown_seconds: int = setting("seconds between scale-out steps", between(0, 3600))
    app_env: str = setting("the application's config class (APP_ENV); deployed stacks run staging or production",
                           one_of("staging", "production"))
    log_level: str = setting("application log level (LOG_LEVEL)", one_of("DEBUG", "INFO", "WARNING", "ERROR"))


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
    snapshots: SnapshotSettings = setting("AWS Backup snapshots of the database")
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
