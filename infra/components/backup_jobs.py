"""Logical backups of the database: an encrypted, versioned bucket with its own key, and EventBridge Scheduler
running the application image's `flask backup` commands as Fargate tasks (daily backup + prune, weekly drill)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.components import AwsContext, assume_role_policy, policy, task_role_trust, type_token
from infra.components.bucket import PrivateBucket
from infra.components.keys import key_policy
from infra.components.task import (
    AppWiring,
    execution_role,
    fargate_task_definition,
    injected,
    job_container,
    login_secrets,
)
from infra.settings import BackupsSettings, ServiceSettings

PREFIX = "postgres"  # BACKUP_PREFIX: the task role may write only under it
ACCESS_LOG_PREFIX = "backups/"  # where S3 writes the backup bucket's access log
# The bucket expires a backup a week after the prune would, so the lifecycle only catches what the prune missed:
# the newest backup is lost to it only if backups fail for retention + 7 days (and it stays recoverable
# noncurrentDays more). A failed job stops with a non-zero exit code, which the monitoring component's EventBridge
# rule sends to the alarm topic.
LIFECYCLE_GRACE_DAYS = 7
COMMANDS = {
    "backup": ["flask", "--app", "webapp", "backup", "create", "--prune"],
    "drill": ["flask", "--app", "webapp", "backup", "drill"],
}


def scheduled_jobs(settings: BackupsSettings) -> list[str]:
    """The jobs a stack runs: none when backups are off, else the backup always, the drill when it has a schedule."""
    if not settings.enabled:
        return []
    return [job for job in COMMANDS if job == "backup" or settings.drill_schedule]


def task_family(name_prefix: str, job: str) -> str:
    """A job's task family, which its schedule is named after too (the policy pack matches them by it)."""
    return f"{name_prefix}-{job}"


def task_families(name_prefix: str, settings: BackupsSettings) -> list[str]:
    """The task families of the stack's jobs, which monitoring watches before the jobs exist."""
    return [task_family(name_prefix, job) for job in scheduled_jobs(settings)]


def task_policy(bucket_arn: str, key_arn: str) -> dict:
    """Write, read and prune backups under the prefix of this bucket, with this key; nothing else. (The operations
    tests run every backup command under exactly this document, on moto enforcing IAM.)"""
    return policy(
        {"Sid": "FindBackups", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
        {"Sid": "WriteReadPruneBackups", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:GetObject", "s3:GetObjectRetention", "s3:DeleteObject",
                    "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
         "Resource": f"{bucket_arn}/{PREFIX}/*"},
        {"Sid": "UseTheBackupKey", "Effect": "Allow",
         "Action": ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"], "Resource": key_arn},
    )


def access_log_delivery(context: AwsContext, log_bucket_arn: str, source_bucket_arn: pulumi.Input[str]) -> dict:
    """S3's log delivery writes the backup bucket's access log, for that bucket of this account only."""
    return {"Sid": "S3ServerAccessLogDelivery", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject", "Resource": f"{log_bucket_arn}/{ACCESS_LOG_PREFIX}*",
            "Condition": {"ArnLike": {"aws:SourceArn": source_bucket_arn},
                          "StringEquals": {"aws:SourceAccount": context.account_id}}}


def scheduler_policy(context: AwsContext, families: list[str], cluster_arn: pulumi.Input[str],
                     role_arns: list[pulumi.Input[str]]) -> dict:
    """Run these task families on this cluster, hand ECS the tasks' roles, tag the tasks it starts."""
    return policy(
        {"Sid": "RunTheJobs", "Effect": "Allow", "Action": "ecs:RunTask",
         "Resource": [context.arn("ecs", f"task-definition/{family}:*") for family in families],
         "Condition": {"ArnEquals": {"ecs:cluster": cluster_arn}}},
        {"Sid": "PassTheTaskRoles", "Effect": "Allow", "Action": "iam:PassRole", "Resource": role_arns,
         "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
        {"Sid": "TagTheTasks", "Effect": "Allow", "Action": "ecs:TagResource",
         "Resource": context.arn("ecs", "task/*"),
         "Condition": {"StringEquals": {"ecs:CreateAction": "RunTask"}}},
    )


class BackupJobs(pulumi.ComponentResource):
    """The backup bucket and key, the backup and drill task definitions, and their schedules."""

    def __init__(self, name: str, settings: BackupsSettings, service: ServiceSettings, *, wiring: AppWiring,
                 context: AwsContext, name_prefix: str, cluster_arn: pulumi.Input[str],
                 log_group: aws.cloudwatch.LogGroup, cpu_architecture: str,
                 subnet_ids: list[pulumi.Input[str]], security_group_id: pulumi.Input[str], protect: bool,
                 key_deletion_window_days: int, log_retention_days: int,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("backups", "BackupJobs"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=protect)

        self.key = aws.kms.Key(f"{name}-key", description=f"{name_prefix}: database backups in S3",
                               enable_key_rotation=True, deletion_window_in_days=key_deletion_window_days,
                               policy=json.dumps(key_policy(context, ("s3",))), opts=kept)
        aws.kms.Alias(f"{name}-key", name=f"alias/{name_prefix}-backups", target_key_id=self.key.key_id,
                      opts=pulumi.ResourceOptions(parent=self.key))
        self.bucket = PrivateBucket(f"{name}-bucket", purpose="database backups", kms_key_arn=self.key.arn,
                                    versioning=True, expire_days=settings.retention_days + LIFECYCLE_GRACE_DAYS,
                                    noncurrent_days=settings.noncurrent_days,
                                    lock_days=settings.retention_days if settings.object_lock else 0,
                                    force_destroy=not protect, opts=kept)
        # Who read or wrote which dump, from S3's server access log (free but for storage; delivered within hours):
        # into a bucket of its own, S3-managed keys and no lock, as S3 requires of a log bucket.
        reads = PrivateBucket(f"{name}-access-logs", purpose="database backups: S3 access log",
                              expire_days=log_retention_days, force_destroy=not protect,
                              extra_statements=lambda arn: [access_log_delivery(context, arn, self.bucket.arn)],
                              opts=child)
        aws.s3.BucketLogging(f"{name}-bucket-access-log", bucket=self.bucket.name, target_bucket=reads.name,
                             target_prefix=ACCESS_LOG_PREFIX, opts=pulumi.ResourceOptions(parent=self.bucket))

        task_role = aws.iam.Role(f"{name}-task", description=f"{name_prefix}: what the backup jobs may call",
                                 assume_role_policy=task_role_trust(context),
                                 opts=child)
        aws.iam.RolePolicy(f"{name}-task", role=task_role.id,
                           policy=pulumi.Output.all(self.bucket.arn, self.key.arn).apply(
                               lambda arns: json.dumps(task_policy(*arns))),
                           opts=pulumi.ResourceOptions(parent=task_role))

        jobs = {job: COMMANDS[job] for job in scheduled_jobs(settings)}
        # Each job logs in as its own role (backup: reads; drill: reads and creates its scratch database), and
        # its execution role may read that login alone.
        self.task_definitions, executions = {}, []
        for job, command in jobs.items():
            login = login_secrets(wiring.logins[job])
            execution, _ = execution_role(
                f"{name}-{job}-execution", description=f"{name_prefix}: ECS starts the {job} task", context=context,
                wiring=wiring, log_group_arn=log_group.arn, secrets=injected(login), parent=self)
            executions.append(execution.arn)
            container = job_container(command, service, wiring, login=wiring.logins[job],
                                      extra_environment=self._environment(settings), log_group=log_group.name,
                                      stream_prefix=job, region=context.region)
            self.task_definitions[job] = fargate_task_definition(
                f"{name}-{job}", family=task_family(name_prefix, job), cpu=settings.cpu, memory=settings.memory,
                cpu_architecture=cpu_architecture, execution_role=execution, task_role=task_role,
                containers=[container], ephemeral_storage={"size_in_gib": settings.ephemeral_storage_gib},
                opts=child)

        scheduler_role = aws.iam.Role(f"{name}-scheduler", description=f"{name_prefix}: the scheduler starts "
                                      "the backup jobs",
                                      # The scheduler names the schedule group (the jobs' schedules are in default).
                                      assume_role_policy=assume_role_policy(
                                          "scheduler.amazonaws.com", context,
                                          context.arn("scheduler", "schedule-group/default")),
                                      opts=child)
        scheduler_grant = aws.iam.RolePolicy(
            f"{name}-scheduler", role=scheduler_role.id,
            policy=pulumi.Output.json_dumps(scheduler_policy(
                context, task_families(name_prefix, settings), cluster_arn,
                [task_role.arn, *executions])),
            opts=pulumi.ResourceOptions(parent=scheduler_role))
        expressions = {"backup": settings.schedule, "drill": settings.drill_schedule}
        for job, task_definition in self.task_definitions.items():
            aws.scheduler.Schedule(
                f"{name}-{job}",
                name=task_family(name_prefix, job),
                description=f"{name_prefix}: flask backup {COMMANDS[job][4]}",
                schedule_expression=expressions[job],
                schedule_expression_timezone="UTC",
                flexible_time_window={"mode": "OFF"},
                target={
                    "arn": cluster_arn,
                    "role_arn": scheduler_role.arn,
                    "ecs_parameters": {
                        "task_definition_arn": task_definition.arn,
                        "launch_type": "FARGATE",
                        "task_count": 1,
                        "network_configuration": {"subnets": subnet_ids, "security_groups": [security_group_id],
                                                  "assign_public_ip": False},
                        "enable_ecs_managed_tags": True,
                        "propagate_tags": "TASK_DEFINITION",
                    },
                    # RunTask can fail for want of capacity: try again, but not past the hour.
                    "retry_policy": {"maximum_retry_attempts": 3, "maximum_event_age_in_seconds": 3600},
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[scheduler_grant]))

        self.bucket_name = self.bucket.name
        self.key_arn = self.key.arn
        self.register_outputs({"bucket_name": self.bucket_name, "key_arn": self.key_arn,
                               "task_definitions": {job: td.arn for job, td in self.task_definitions.items()}})

    def _environment(self, settings: BackupsSettings) -> dict[str, pulumi.Input[str]]:
        """What the backup commands read beside the database's variables."""
        return {"BACKUP_BUCKET": self.bucket.name, "BACKUP_PREFIX": PREFIX,
                "BACKUP_KMS_KEY_ID": self.key.arn, "BACKUP_RETENTION_DAYS": str(settings.retention_days),
                "BACKUP_PART_SIZE_MB": str(settings.part_size_mb), "BACKUP_WORK_DIR": "/tmp"}
