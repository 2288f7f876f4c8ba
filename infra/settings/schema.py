"""The settings of one stack, as frozen dataclasses: one field per key of the stack file (camelCase there), each
with its one-line documentation, the check of its value alone, and, where it decides which resources exist, its
`shape` (what of the value decides it; the parity report moves these one at a time to explain a difference).

The serving path's groups are in serving.py, the field helpers in fields.py. The dataclasses are the schema:
loading (load.py), the rules across values (checks.py) and the configuration
reference in README.md (reference.py) all walk them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra import sizing
from infra.settings.fields import same, setting
from infra.settings.serving import (
    FirewallSettings,
    ImageSettings,
    LoadBalancerSettings,
    MonitoringSettings,
    ServiceSettings,
)
from infra.settings.values import (
    LOG_RETENTION_DAYS,
    NAT_MODES,
    between,
    cidr_block,
    daily_window,
    matches,
    one_of,
    region_name,
    rotation_schedule,
    weekly_window,
    zero_or_between,
)


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
    performance_insights: bool = setting("Performance Insights, encrypted with the data key")
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
    lock_mode: str = setting("AWS Backup Vault Lock on the vaults: governance (removable by whoever may "
                             "backup:DeleteBackupVaultLockConfiguration) or compliance (after lockChangeableDays it "
                             "can never be changed or removed, by anyone, and the vaults cannot be deleted while they "
                             "hold snapshots)", one_of("governance", "compliance"))
    lock_min_retention_days: int = setting("the vault lock refuses snapshots kept less than this",
                                           between(1, 36500))
    lock_max_retention_days: int = setting("the vault lock refuses snapshots kept more than this", between(1, 36500))
    lock_changeable_days: int = setting("compliance mode only: days the lock can still be changed or removed before "
                                        "it becomes permanent (AWS takes 3 at least)", between(3, 36500))


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
    object_lock: bool = setting("S3 Object Lock (governance mode) keeps every backup retentionDays: nobody deletes "
                                "or overwrites one earlier without bypassing governance, and it cannot be turned off "
                                "once on", shape=same)


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
    secrets: SecretsSettings = setting("the stack's KMS keys and the secrets")
    logs: LogSettings = setting("log groups")
    database: DatabaseSettings = setting("RDS PostgreSQL")
    cache: CacheSettings = setting("ElastiCache Redis")
    snapshots: SnapshotSettings = setting("AWS Backup snapshots of the database")
    backups: BackupsSettings = setting("logical backups of the database to S3 and the restore drill")
    monitoring: MonitoringSettings = setting("alarms to an encrypted SNS topic, and a dashboard")
    image: ImageSettings = setting("the application image")
    load_balancer: LoadBalancerSettings = setting("the Application Load Balancer")
    firewall: FirewallSettings = setting("AWS WAF on the load balancer")
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
