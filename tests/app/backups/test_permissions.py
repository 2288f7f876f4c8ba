"""`flask backup ...` on moto checking every request against IAM: too few permissions are named, and the task
role's policy from infra/ is enough for the backup's prefix and no other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.app.backups.conftest import BUCKET, uploads_in_progress
from tests.moto_server import MotoServer

ROOT = Path(__file__).resolve().parents[3]


class JobOnEnforcingMoto:
    """moto checking every request against IAM; a bucket, a key, and a backup-job user whose policy a test sets
    (through an admin user: moto lets only the first requests through unchecked, and those do the setup)."""

    SETUP_REQUESTS = 7

    def __init__(self, server: MotoServer, primary, database: str):
        iam, s3, kms = boto3.client("iam"), boto3.client("s3"), boto3.client("kms")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.key_arn = kms.create_key()["KeyMetadata"]["Arn"]
        self.bucket_arn = f"arn:aws:s3:::{BUCKET}"
        job, admin = (self._user(iam, name) for name in ("backup-job", "admin"))
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        self.admin_keys = admin
        self.admin = self.admin_client("iam")
        self.env = {**os.environ, "AWS_ACCESS_KEY_ID": job[0], "AWS_SECRET_ACCESS_KEY": job[1], "APP_ENV": "testing",
                    "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(primary.port), "DATABASE_NAME": database,
                    "DATABASE_USER": "postgres", "DATABASE_PASSWORD": primary.password, "BACKUP_BUCKET": BUCKET,
                    "BACKUP_KMS_KEY_ID": self.key_arn, "PYTHONPATH": str(ROOT / "app")}
        self.database = database

    @staticmethod
    def _user(iam, name: str) -> tuple[str, str]:
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def admin_client(self, service: str):
        return boto3.client(service, aws_access_key_id=self.admin_keys[0], aws_secret_access_key=self.admin_keys[1])

    def grant(self, policy: dict) -> None:
        self.admin.put_user_policy(UserName="backup-job", PolicyName="job", PolicyDocument=json.dumps(policy))

    def run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "backup", *command], env=self.env,
                              capture_output=True, text=True, timeout=180)


@pytest.fixture
def iam_enforced(source, monkeypatch):
    server = MotoServer(enforce_iam=True, free_requests=JobOnEnforcingMoto.SETUP_REQUESTS).start()
    try:
        for key, value in server.environment().items():
            monkeypatch.setenv(key, value)
        yield JobOnEnforcingMoto(server, *source)
    finally:
        server.stop()


def for_moto(document: dict) -> dict:
    """moto matches resource ARNs for S3 only and authorizes other services' actions against "*": the KMS
    statement is widened to that, the S3 statements stay exactly as deployed."""
    statements = [dict(statement, Resource="*") if str(statement["Action"]).count("kms:") else statement
                  for statement in document["Statement"]]
    return {**document, "Statement": statements}


def test_insufficient_permissions_are_named_and_leave_nothing(iam_enforced):
    """A role that may list the bucket and see the key, but not write."""
    iam_enforced.grant({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "kms:DescribeKey"], "Resource": "*"}]})
    result = iam_enforced.run("create")
    assert result.returncode == 1, result.stderr
    assert "access denied; the role running this needs s3:PutObject, kms:GenerateDataKey and kms:Decrypt on " \
           f"s3://{BUCKET}/postgres/{iam_enforced.database}/" in result.stderr
    assert "Traceback" not in result.stderr
    s3 = iam_enforced.admin_client("s3")
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0 and uploads_in_progress(s3) == []


def test_the_deployed_task_policy_allows_the_backup_and_no_other_prefix(iam_enforced):
    """Cross-layer: the task role's policy document from infra/, exactly, lets `flask backup create` write an
    encrypted backup and read and delete it again; the same document for another prefix does not. (moto's IAM
    check miscomputes the signature of a listing with a prefix, so the listing commands cannot run here; their
    one permission, s3:ListBucket on the bucket, is in the document.)"""
    from infra.components.backup_jobs import task_policy

    iam_enforced.grant(for_moto(task_policy(iam_enforced.bucket_arn, iam_enforced.key_arn)))
    created = iam_enforced.run("create")
    assert created.returncode == 0, created.stderr
    dump_key = created.stdout.split(f"s3://{BUCKET}/", 1)[1].split(",", 1)[0]
    as_job = boto3.client("s3", aws_access_key_id=iam_enforced.env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=iam_enforced.env["AWS_SECRET_ACCESS_KEY"])
    manifest_key = dump_key.removesuffix(".dump") + ".manifest.json"
    assert json.loads(as_job.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())["key"] == dump_key
    as_job.delete_object(Bucket=BUCKET, Key=manifest_key)  # what prune does
    elsewhere = for_moto(task_policy(iam_enforced.bucket_arn, iam_enforced.key_arn))
    elsewhere["Statement"][1]["Resource"] = f"{iam_enforced.bucket_arn}/elsewhere/*"
    iam_enforced.grant(elsewhere)
    refused = iam_enforced.run("create")
    assert refused.returncode == 1 and "access denied" in refused.stderr
