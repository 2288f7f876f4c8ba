"""The scheduled backup and drill tasks, run from the image as the prod stack's task definitions run them: their
own database logins injected from Secrets Manager, a read-only root with the task's /tmp, pg_dump and pg_restore
from the image against the stand-in's PostgreSQL 15 (the client's major version must accept the server's), the
dumps in moto's S3."""

from __future__ import annotations

import boto3
import pytest

from infra.components.task import CONTAINER
from tests import ecs_task
from tests.container.conftest import RUN_AS, TASK_DEFINITION, Task


@pytest.fixture(scope="module")
def bucket(stand_in, stacks):
    """The plan's backup bucket (its name as the task is told it), in moto."""
    definition = ecs_task.container(stacks[RUN_AS].named("backups-backup", TASK_DEFINITION).inputs, CONTAINER)
    env = {item["name"]: item["value"] for item in definition["environment"]}
    s3 = boto3.client("s3", **stand_in.boto())
    s3.create_bucket(Bucket=env["BACKUP_BUCKET"],
                     CreateBucketConfiguration={"LocationConstraint": stand_in.plan.region})
    return s3, env["BACKUP_BUCKET"], env["BACKUP_PREFIX"]


def run_job(stacks, app_image, stand_in, name: str):
    """One scheduled task's container, run to completion and removed; its output and exit code."""
    task = Task(stacks[RUN_AS], name, app_image, stand_in)
    try:
        return task.run(CONTAINER)
    finally:
        task.remove()


def test_the_backup_task_dumps_the_database_into_the_bucket(stacks, app_image, stand_in, migrated, bucket):
    s3, name, prefix = bucket
    done = run_job(stacks, app_image, stand_in, "backups-backup")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "server version mismatch" not in done.stderr
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=name, Prefix=prefix).get("Contents", [])]
    dumps = [key for key in keys if key.endswith(".dump")]
    assert len(dumps) == 1 and dumps[0].removesuffix(".dump") + ".manifest.json" in keys, keys
    head = s3.head_object(Bucket=name, Key=dumps[0])
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == stand_in.backup_key


def test_the_drill_task_restores_the_latest_dump_and_finds_it_equal(stacks, app_image, stand_in, migrated, bucket):
    done = run_job(stacks, app_image, stand_in, "backups-drill")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "drill passed" in done.stdout and "ok       public.notes" in done.stdout
