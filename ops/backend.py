"""Bootstrap a self-managed Pulumi backend: an S3 bucket for the state and a KMS key for the secrets provider.

    python -m ops.backend --bucket acme-pulumi-state --region eu-west-1 [--key-alias alias/pulumi-secrets]

Idempotent: each piece is read first and written only when it differs, so a second run changes nothing (and says
so). Prints the `pulumi login` and `pulumi stack init` lines to use with them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from botocore.exceptions import ClientError

from ops import OpsError
from ops.aws import client, error_code, main, reported

PUBLIC_ACCESS_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                       "RestrictPublicBuckets": True}


def tls_only_policy(bucket: str) -> dict:
    arn = f"arn:aws:s3:::{bucket}"
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def ensure_key(kms, alias: str) -> tuple[str, str]:
    """The key behind alias, created (with rotation) if the alias does not exist. Returns (key ARN, what was done)."""
    try:
        with reported(f"looking up {alias}"):
            metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except OpsError as error:
        if "NotFoundException" not in str(error):
            raise
        with reported(f"creating the KMS key for {alias}"):
            metadata = kms.create_key(Description="Pulumi secrets provider (ops.backend)",
                                      Tags=[{"TagKey": "managed-by", "TagValue": "ops.backend"}])["KeyMetadata"]
        try:
            with reported(f"naming the new key {alias}"):
                kms.enable_key_rotation(KeyId=metadata["KeyId"])
                kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
        except OpsError:
            # A key nobody can find by its alias would be orphaned (and billed): take it back before reporting.
            with contextlib.suppress(ClientError):
                kms.schedule_key_deletion(KeyId=metadata["KeyId"], PendingWindowInDays=7)
            raise
        return metadata["Arn"], "created"
    if metadata["KeyState"] != "Enabled":
        raise OpsError(f"{alias} points at a key that is {metadata['KeyState']}: enable it or choose another alias")
    with reported(f"checking rotation of {alias}"):
        if kms.get_key_rotation_status(KeyId=metadata["KeyId"])["KeyRotationEnabled"]:
            return metadata["Arn"], "unchanged"
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    return metadata["Arn"], "updated (rotation on)"


def ensure_bucket(s3, bucket: str, region: str, key_arn: str) -> list[tuple[str, str]]:
    """The state bucket with versioning, SSE-KMS, owner-enforced objects, no public access and TLS only."""
    done = []
    try:
        with reported(f"looking up bucket {bucket}"):
            try:
                s3.head_bucket(Bucket=bucket)
            except ClientError as error:
                if error_code(error) in ("404", "NoSuchBucket"):
                    raise LookupError from None
                if error_code(error) in ("403", "AccessDenied"):
                    raise OpsError(f"bucket {bucket} exists and these credentials cannot use it (another "
                                   "account's?): choose another name") from None
                raise
        done.append(("bucket", "unchanged"))
    except LookupError:
        with reported(f"creating bucket {bucket}"):
            location = {} if region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=bucket, **location)
        done.append(("bucket", "created"))

    def setting(name, read, wanted, write):
        """read() returns the managed part of the current setting; written only when it differs."""
        with reported(f"reading {name} of {bucket}"):
            try:
                current = read()
            except ClientError as error:
                if not error_code(error).startswith(("NoSuch", "ServerSideEncryptionConfigurationNotFound",
                                                     "OwnershipControlsNotFound")):
                    raise
                current = None
        if current == wanted:
            done.append((name, "unchanged"))
            return
        with reported(f"setting {name} of {bucket}"):
            write()
        done.append((name, "set"))

    setting("versioning", lambda: s3.get_bucket_versioning(Bucket=bucket).get("Status"), "Enabled",
            lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}))
    encryption = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                  "BucketKeyEnabled": True}

    def current_encryption():
        """Only the fields managed here: S3 may add others (e.g. BlockedEncryptionTypes), which are kept."""
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        return {"ApplyServerSideEncryptionByDefault": {k: default.get(k) for k in ("SSEAlgorithm", "KMSMasterKeyID")},
                "BucketKeyEnabled": rule.get("BucketKeyEnabled", False)}

    def write_encryption():
        rules = []
        with contextlib.suppress(ClientError):
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{**(rules[0] if rules else {}), **encryption}]})
    setting("encryption", current_encryption, encryption, write_encryption)
    setting("object ownership",
            lambda: s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"],
            [{"ObjectOwnership": "BucketOwnerEnforced"}], lambda: s3.put_bucket_ownership_controls(
                Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}))
    setting("public access block",
            lambda: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
            PUBLIC_ACCESS_BLOCK, lambda: s3.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK))
    ours = tls_only_policy(bucket)["Statement"][0]

    def current_policy() -> dict | None:
        return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])

    def tls_statement():
        existing = current_policy()
        return next((st for st in existing["Statement"] if st.get("Sid") == ours["Sid"]), None) if existing else None

    def write_policy():
        """Add (or correct) our statement; statements others put in the policy stay."""
        try:
            existing = current_policy()
        except ClientError:
            existing = None
        others = [st for st in (existing or {}).get("Statement", []) if st.get("Sid") != ours["Sid"]]
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17",
                                                               "Statement": [ours, *others]}))
    setting("TLS-only policy", tls_statement, ours, write_policy)
    return done


def bootstrap(bucket: str, region: str, alias: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Returns (what was done per piece, the pulumi command lines)."""
    if not alias.startswith("alias/") or alias.startswith("alias/aws/"):
        raise OpsError(f"--key-alias {alias!r}: give alias/<name> (not alias/aws/..., which AWS reserves)")
    key_arn, key_done = ensure_key(client("kms", region), alias)
    done = [("KMS key " + alias, key_done), *ensure_bucket(client("s3", region), bucket, region, key_arn)]
    commands = [f"pulumi login 's3://{bucket}?region={region}&awssdk=v2'",
                f"pulumi stack init <stack> --secrets-provider 'awskms://{alias}?region={region}'"]
    return done, commands


def run(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m ops.backend", description=__doc__.split("\n\n")[0])
    cli.add_argument("--bucket", required=True, help="the state bucket's name (globally unique)")
    cli.add_argument("--region", required=True)
    cli.add_argument("--key-alias", default="alias/pulumi-secrets")
    args = cli.parse_args(argv)
    done, commands = bootstrap(args.bucket, args.region, args.key_alias)
    for piece, what in done:
        print(f"{piece}: {what}")
    changed = [piece for piece, what in done if what != "unchanged"]
    print(f"{len(changed)} changed" if changed else "nothing changed: the backend was already set up")
    print("\nUse it:")
    for line in commands:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(run))
