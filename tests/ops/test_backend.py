"""ops.backend against moto: the state bucket and the secrets key are created once, and a second run changes
nothing."""

from __future__ import annotations

import json

import boto3

from ops import backend
from ops.aws import main

BUCKET = "acme-pulumi-state-test"


def cli(capsys, *argv):
    code = main(lambda: backend.run(["--bucket", BUCKET, "--region", "eu-west-1", *argv]))
    out = capsys.readouterr()
    return code, out.out, out.err


def state(s3, kms) -> dict:
    """Everything the bootstrap manages, as AWS reports it."""
    return {
        "versioning": s3.get_bucket_versioning(Bucket=BUCKET)["Status"],
        "encryption": s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"],
        "public": s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"],
        "ownership": s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"],
        "policy": json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]),
        "keys": sorted(k["KeyId"] for k in kms.list_keys()["Keys"]),
        "aliases": sorted(a["AliasName"] for a in kms.list_aliases()["Aliases"] if "pulumi" in a["AliasName"]),
    }


def test_creates_everything_then_a_second_run_changes_nothing(aws, capsys):
    code, out, err = cli(capsys)
    assert code == 0, err
    assert "KMS key alias/pulumi-secrets: created" in out and "bucket: created" in out and "7 changed" in out
    assert f"pulumi login 's3://{BUCKET}?region=eu-west-1&awssdk=v2'" in out
    assert "pulumi stack init <stack> --secrets-provider 'awskms://alias/pulumi-secrets?region=eu-west-1'" in out
    s3, kms = boto3.client("s3"), boto3.client("kms")
    first = state(s3, kms)
    key_arn = kms.describe_key(KeyId="alias/pulumi-secrets")["KeyMetadata"]["Arn"]
    assert first["versioning"] == "Enabled" and first["aliases"] == ["alias/pulumi-secrets"]
    assert first["encryption"][0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                                           "KMSMasterKeyID": key_arn}
    assert all(first["public"].values()) and first["ownership"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert first["policy"]["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True

    code, out, _ = cli(capsys)
    assert code == 0 and "nothing changed: the backend was already set up" in out
    assert out.count(": unchanged") == 7
    assert state(s3, kms) == first  # one key, same settings


def test_an_existing_bucket_gets_what_it_lacks(aws, capsys):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    theirs = {"Sid": "NoBucketDeletion", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
              "Resource": f"arn:aws:s3:::{BUCKET}"}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [theirs]}))
    code, out, _ = cli(capsys)
    assert code == 0 and "bucket: unchanged" in out and "versioning: unchanged" in out
    assert "encryption: set" in out and "TLS-only policy: set" in out
    statements = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert [st["Sid"] for st in statements] == ["DenyInsecureTransport", "NoBucketDeletion"]  # theirs kept
    code, out, _ = cli(capsys)
    assert "nothing changed" in out


def test_bad_alias_and_disabled_key_are_refused(aws, capsys):
    code, _, err = cli(capsys, "--key-alias", "alias/aws/s3")
    assert code == 1 and "AWS reserves" in err
    kms = boto3.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/pulumi-secrets", TargetKeyId=key)
    kms.disable_key(KeyId=key)
    code, _, err = cli(capsys)
    assert code == 1 and "is Disabled: enable it or choose another alias" in err and "Traceback" not in err
    assert boto3.client("s3").list_buckets()["Buckets"] == []  # nothing made before the refusal
