"""A private S3 bucket: owner-enforced, public access blocked, encrypted, TLS-only, objects expiring."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.components import policy, type_token


class PrivateBucket(pulumi.ComponentResource):
    """The bucket every log or backup destination should be. `kms_key_arn=None` encrypts with S3-managed keys (what
    ALB access logs and S3 server access logs require); `extra_statements(bucket_arn)` adds service grants to the
    TLS-only policy. With versioning, replaced or deleted objects stay recoverable `noncurrent_days` (default:
    expire_days); with `lock_days`, S3 Object Lock keeps every new object version that many days (governance mode:
    nobody deletes or overwrites it without s3:BypassGovernanceRetention and asking to bypass)."""

    def __init__(self, name: str, *, purpose: str, expire_days: int, kms_key_arn: pulumi.Input[str] | None = None,
                 versioning: bool = False, noncurrent_days: int | None = None, lock_days: int = 0,
                 extra_statements=None, force_destroy: bool = False, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("storage", "PrivateBucket"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(name, force_destroy=force_destroy, tags={"Purpose": purpose}, opts=child)
        bucket_child = pulumi.ResourceOptions(parent=self.bucket)
        aws.s3.BucketOwnershipControls(name, bucket=self.bucket.id,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=bucket_child)
        access_block = aws.s3.BucketPublicAccessBlock(name, bucket=self.bucket.id, block_public_acls=True,
                                                      block_public_policy=True, ignore_public_acls=True,
                                                      restrict_public_buckets=True, opts=bucket_child)
        encryption = ({"sse_algorithm": "aws:kms", "kms_master_key_id": kms_key_arn} if kms_key_arn
                      else {"sse_algorithm": "AES256"})
        aws.s3.BucketServerSideEncryptionConfiguration(
            name, bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": encryption, "bucket_key_enabled": bool(kms_key_arn)}],
            opts=bucket_child)
        if versioning or lock_days:
            versioned = aws.s3.BucketVersioning(name, bucket=self.bucket.id,
                                                versioning_configuration={"status": "Enabled"}, opts=bucket_child)
        if lock_days:
            # A resource of its own (not the bucket's flag, which only a new bucket takes): it locks an existing,
            # versioned bucket too. It cannot be turned off afterwards.
            aws.s3.BucketObjectLockConfiguration(
                name, bucket=self.bucket.id, object_lock_enabled="Enabled",
                rule={"default_retention": {"mode": "GOVERNANCE", "days": lock_days}},
                opts=pulumi.ResourceOptions(parent=self.bucket, depends_on=[versioned]))
        aws.s3.BucketLifecycleConfiguration(name, bucket=self.bucket.id, rules=[{
            "id": "expire",
            "status": "Enabled",
            "filter": {},
            "expiration": {"days": expire_days},
            "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days or expire_days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
        }], opts=bucket_child)

        def document(arn: str) -> dict:
            tls_only = {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
            return policy(tls_only, *(extra_statements(arn) if extra_statements else []))

        aws.s3.BucketPolicy(name, bucket=self.bucket.id,
                            policy=self.bucket.arn.apply(lambda arn: pulumi.Output.json_dumps(document(arn))),
                            opts=pulumi.ResourceOptions(parent=self.bucket, depends_on=[access_block]))
        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"name": self.name, "arn": self.arn})
