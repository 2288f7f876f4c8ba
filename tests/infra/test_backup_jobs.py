"""BackupJobs component: the backup bucket and key, the backup and drill tasks, their schedules and roles."""

import json

import click
import pulumi_aws as aws
import pytest

from infra.components.backup_jobs import COMMANDS, LIFECYCLE_GRACE_DAYS, BackupJobs
from infra.components.task import RDS_CA_BUNDLE
from infra.offline import harness
from tests.infra.checks import policy_findings, schedule_problems, task_definition_problems
from tests.infra.conftest import (
    CONTEXT,
    IMAGE,
    REPOSITORY_ARN,
    SECRET_ARNS,
    SECRETS_KEY_ARN,
    settings_for,
    wiring_for,
)
from tests.infra.test_service import APP_SG

CLUSTER_ARN = f"arn:aws:ecs:eu-west-1:{harness.ACCOUNT}:cluster/flask-aws-prod"


def build(tier="prod", **backups) -> harness.Run:
    s = settings_for(tier, backups=backups)
    wiring = wiring_for(s)

    def program():
        log_group = aws.cloudwatch.LogGroup("logs", name="/ecs/flask-aws-prod/app")
        BackupJobs("backups", s.backups, s.service, wiring=wiring, context=CONTEXT, name_prefix=f"flask-aws-{tier}",
                   cluster_arn=CLUSTER_ARN, log_group=log_group,
                   cpu_architecture="ARM64", subnet_ids=["subnet-p1", "subnet-p2"], security_group_id=APP_SG,
                   protect=s.protect, key_deletion_window_days=30, log_retention_days=90)
    return harness.run(program)


def container(run, job: str) -> dict:
    (definition,) = json.loads(run.named(f"backups-{job}", "aws:ecs/taskDefinition:TaskDefinition")
                               .inputs["containerDefinitions"])
    return definition


@pytest.mark.parametrize("tier, retention, noncurrent", [("dev", 3, 1), ("staging", 7, 7), ("prod", 35, 30)])
def test_bucket_is_versioned_kms_encrypted_private_and_expires_per_tier(tier, retention, noncurrent):
    run = build(tier)
    key = run.named("backups-key", "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True and key.protect is (tier != "dev")
    assert run.named("backups-key", "aws:kms/alias:Alias").inputs["name"] == f"alias/flask-aws-{tier}-backups"
    assert run.named("backups-bucket", "aws:s3/bucket:Bucket").protect is (tier != "dev")
    versioning = run.named("backups-bucket", "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    (rule,) = run.named("backups-bucket", "aws:s3/bucketServerSideEncryptionConfiguration:"
                        "BucketServerSideEncryptionConfiguration").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms",
                                                          "kmsMasterKeyId": key.outputs["arn"]}
    block = run.named("backups-bucket", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                  "restrictPublicBuckets"))
    (lifecycle,) = run.named("backups-bucket", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
                             ).inputs["rules"]
    assert lifecycle["expiration"] == {"days": retention + LIFECYCLE_GRACE_DAYS}
    assert lifecycle["noncurrentVersionExpiration"] == {"noncurrentDays": noncurrent}
    assert lifecycle["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    statements = json.loads(run.named("backups-bucket", "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
                            )["Statement"]
    assert statements[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_task_definitions_are_valid_and_run_the_backup_commands_in_the_app_image():
    run = build()
    for job in ("backup", "drill"):
        task = run.named(f"backups-{job}", "aws:ecs/taskDefinition:TaskDefinition").inputs
        assert task_definition_problems(task) == ""
        assert task["family"] == f"flask-aws-prod-{job}" and task["ephemeralStorage"] == {"sizeInGib": 100}
        c = container(run, job)
        assert c["image"] == IMAGE and c["command"] == COMMANDS[job] and "portMappings" not in c
        assert c["readonlyRootFilesystem"] is True and c["mountPoints"][0]["containerPath"] == "/tmp"
        assert c["logConfiguration"]["options"]["awslogs-stream-prefix"] == job
        env = {e["name"]: e["value"] for e in c["environment"]}
        # The database's variables, verified TLS included; nothing of the serving contract (Redis, keys, Gunicorn).
        assert (env["DATABASE_HOST"], env["DATABASE_SSLMODE"], env["DATABASE_SSLROOTCERT"]) == (
            "db.example.internal", "verify-full", RDS_CA_BUNDLE)
        assert not {"REDIS_HOST", "SECRET_KEY_SECRET_ARN", "DATABASE_SECRET_ARN", "WEB_CONCURRENCY"} & set(env)
        assert env["BACKUP_BUCKET"] == run.named("backups-bucket", "aws:s3/bucket:Bucket").outputs["bucket"]
        assert env["BACKUP_KMS_KEY_ID"] == run.named("backups-key", "aws:kms/key:Key").outputs["arn"]
        assert (env["BACKUP_PREFIX"], env["BACKUP_RETENTION_DAYS"], env["BACKUP_PART_SIZE_MB"]) == \
            ("postgres", "35", "16")
        # Each job logs in as its own role, and is given nothing else.
        login = SECRET_ARNS[f"database-{job}"]
        assert {s["name"]: s["valueFrom"] for s in c["secrets"]} == {
            "DATABASE_USER": f"{login}:username::", "DATABASE_PASSWORD": f"{login}:password::"}


def test_each_jobs_execution_role_reads_its_own_login_alone():
    run = build()
    for job in ("backup", "drill"):
        policy = json.loads(run.named(f"backups-{job}-execution", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
        by_sid = {s["Sid"]: s for s in policy["Statement"]}
        assert by_sid["ReadTheSecrets"]["Resource"] == [SECRET_ARNS[f"database-{job}"]]
        assert by_sid["PullTheImage"]["Resource"] == REPOSITORY_ARN
        assert by_sid["DecryptTheSecrets"]["Resource"] == SECRETS_KEY_ARN and policy_findings(policy) == []
        task = run.named(f"backups-{job}", "aws:ecs/taskDefinition:TaskDefinition").inputs
        assert task["executionRoleArn"] == run.named(f"backups-{job}-execution", "aws:iam/role:Role").outputs["arn"]


def test_the_task_commands_are_commands_the_application_has():
    """Cross-layer: what the task definitions run parses as the app's own `flask backup` commands."""
    from webapp.backups.cli import backup_cli

    for command in COMMANDS.values():
        assert command[:4] == ["flask", "--app", "webapp", "backup"]
        sub = backup_cli.get_command(click.Context(backup_cli), command[4])
        assert sub is not None, command
        sub.make_context(command[4], list(command[5:]))  # raises on an unknown option


def test_the_job_environment_is_what_the_app_reads(monkeypatch):
    from webapp.backups.settings import BackupSettings

    env = {e["name"]: e["value"] for e in container(build(), "backup")["environment"]}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = BackupSettings.from_environment()
    assert (config.bucket, config.prefix, config.kms_key_id) == \
        (env["BACKUP_BUCKET"], "postgres", env["BACKUP_KMS_KEY_ID"])
    assert (config.retention_days, config.part_size_mb, config.work_dir) == (35, 16, "/tmp")
    assert config.region == "eu-west-1"


def test_the_task_role_writes_only_the_prefix_with_only_the_key():
    run = build()
    document = json.loads(run.named("backups-task", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert policy_findings(document) == []
    bucket_arn = run.named("backups-bucket", "aws:s3/bucket:Bucket").outputs["arn"]
    key_arn = run.named("backups-key", "aws:kms/key:Key").outputs["arn"]
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["FindBackups"]["Resource"] == bucket_arn and by_sid["FindBackups"]["Action"] == "s3:ListBucket"
    assert by_sid["WriteReadPruneBackups"]["Resource"] == f"{bucket_arn}/postgres/*"
    assert by_sid["UseTheBackupKey"]["Resource"] == key_arn
    actions = [a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                          else s["Action"])]
    assert not {"*", "s3:*", "kms:*"} & set(actions) and all(s["Resource"] != "*" for s in document["Statement"])
    trust = json.loads(run.named("backups-task", "aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


def test_schedules_run_the_tasks_daily_and_weekly_and_are_valid_for_create_schedule():
    run = build()
    schedules = {s.name: s.inputs for s in run.of_type("aws:scheduler/schedule:Schedule")}
    assert set(schedules) == {"backups-backup", "backups-drill"}
    assert schedules["backups-backup"]["scheduleExpression"] == "cron(30 2 * * ? *)"
    assert schedules["backups-drill"]["scheduleExpression"] == "cron(0 6 ? * SAT *)"
    for job, schedule in schedules.items():
        assert schedule_problems(schedule) == "", job
        ecs = schedule["target"]["ecsParameters"]
        assert schedule["target"]["arn"] == CLUSTER_ARN and ecs["launchType"] == "FARGATE"
        assert ecs["taskDefinitionArn"] == run.named(job, "aws:ecs/taskDefinition:TaskDefinition").outputs["arn"]
        assert ecs["networkConfiguration"] == {"subnets": ["subnet-p1", "subnet-p2"], "securityGroups": [APP_SG],
                                               "assignPublicIp": False}


def test_the_scheduler_may_start_only_these_tasks_on_this_cluster():
    run = build()
    trust = json.loads(run.named("backups-scheduler", "aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    # The scheduler names the schedule group as the source (not a schedule, which AWS documents it does not do).
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": harness.ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:scheduler:eu-west-1:{harness.ACCOUNT}:schedule-group/default"}}
    document = json.loads(run.named("backups-scheduler", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert policy_findings(document) == []
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    families = f"arn:aws:ecs:eu-west-1:{harness.ACCOUNT}:task-definition/flask-aws-prod-"
    assert by_sid["RunTheJobs"]["Resource"] == [f"{families}backup:*", f"{families}drill:*"]
    assert by_sid["RunTheJobs"]["Condition"] == {"ArnEquals": {"ecs:cluster": CLUSTER_ARN}}
    passed = {run.named("backups-task", "aws:iam/role:Role").outputs["arn"],
              run.named("backups-backup-execution", "aws:iam/role:Role").outputs["arn"],
              run.named("backups-drill-execution", "aws:iam/role:Role").outputs["arn"]}
    assert set(by_sid["PassTheTaskRoles"]["Resource"]) == passed
    assert by_sid["PassTheTaskRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_no_drill_schedule_means_no_drill_task():
    run = build(drillSchedule="")
    assert [s.name for s in run.of_type("aws:scheduler/schedule:Schedule")] == ["backups-backup"]
    assert [t.name for t in run.of_type("aws:ecs/taskDefinition:TaskDefinition")] == ["backups-backup"]


def test_a_broken_schedule_is_caught_by_the_model_check():
    inputs = dict(build().named("backups-backup", "aws:scheduler/schedule:Schedule").inputs)
    inputs["target"] = {**inputs["target"], "retryPolicy": {"maximumRetryAttempts": 500,
                                                            "maximumEventAgeInSeconds": 3600}}
    inputs["flexibleTimeWindow"] = {"mode": "SOMETIMES"}
    report = schedule_problems(inputs)
    assert "MaximumRetryAttempts: 500 is above 185" in report and "'SOMETIMES' is not one of" in report


def test_stacks_export_the_bucket_and_key_and_can_go_without(stacks, dev_without_backups):
    for run in stacks.values():
        assert run.outputs["backupBucket"] == run.named("backups-bucket", "aws:s3/bucket:Bucket").outputs["bucket"]
        assert run.outputs["backupKmsKeyArn"].startswith("arn:aws:kms:")
    off = dev_without_backups
    assert not off.of_type("aws:scheduler/schedule:Schedule") and "backupBucket" not in off.outputs


@pytest.mark.parametrize("tier, locked", [("dev", False), ("staging", True), ("prod", True)])
def test_the_dumps_are_locked_for_their_retention_where_the_tier_says(tier, locked):
    """Governance-mode Object Lock for retentionDays, on its own resource after versioning (so an existing bucket
    takes it too); dev's buckets stay easy to tear down."""
    run = build(tier)
    found = run.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    if not locked:
        assert found == []
        return
    (lock,) = found
    days = settings_for(tier).backups.retention_days
    assert lock.inputs["objectLockEnabled"] == "Enabled"
    assert lock.inputs["rule"] == {"defaultRetention": {"mode": "GOVERNANCE", "days": days}}
    versioning = run.named("backups-bucket", "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.urn in lock.depends_on


def test_every_read_of_a_dump_is_in_the_access_log():
    """S3 server access logging into a bucket of its own: S3-managed keys and no lock (S3 refuses either on a log
    bucket), and only S3's log delivery may write it, for the backup bucket of this account."""
    run = build()
    logging = run.one("aws:s3/bucketLogging:BucketLogging").inputs
    dumps = run.named("backups-bucket", "aws:s3/bucket:Bucket")
    logs = run.named("backups-access-logs", "aws:s3/bucket:Bucket")
    assert (logging["bucket"], logging["targetBucket"], logging["targetPrefix"]) == (
        dumps.outputs["bucket"], logs.outputs["bucket"], "backups/")
    (rule,) = run.named("backups-access-logs", "aws:s3/bucketServerSideEncryptionConfiguration:"
                        "BucketServerSideEncryptionConfiguration").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    statements = json.loads(run.named("backups-access-logs", "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
                            )["Statement"]
    (delivery,) = [st for st in statements if st.get("Sid") == "S3ServerAccessLogDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"} and delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == f"{logs.outputs['arn']}/backups/*"
    assert delivery["Condition"] == {"ArnLike": {"aws:SourceArn": dumps.outputs["arn"]},
                                     "StringEquals": {"aws:SourceAccount": harness.ACCOUNT}}


def test_the_backup_key_is_used_only_through_s3():
    document = json.loads(run_key_policy())
    by_sid = {st["Sid"]: st for st in document["Statement"]}
    assert by_sid["AccountUsesTheKeyThroughItsServices"]["Condition"] == {
        "StringEquals": {"kms:ViaService": ["s3.eu-west-1.amazonaws.com"]}}
    assert "kms:Decrypt" not in by_sid["AccountAdministersTheKeyThroughIam"]["Action"]


def run_key_policy() -> str:
    return build().named("backups-key", "aws:kms/key:Key").inputs["policy"]
