"""The S3 side of backups: a stream uploaded in parts (SSE-KMS, a SHA-256 per part that S3 verifies), the manifest
that turns a finished dump into a backup, listing, verified download and deletion."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from webapp.backups import BackupError

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000  # S3's maximum per upload
STAMP = "%Y%m%dT%H%M%S.%fZ"
DUMP = ".dump"
MANIFEST = ".manifest.json"


@dataclass(frozen=True)
class Backup:
    """A finished backup: its dump object has a manifest next to it."""

    stamp: str
    key: str
    size: int

    @property
    def manifest_key(self) -> str:
        return self.key[: -len(DUMP)] + MANIFEST

    @property
    def created(self) -> datetime:
        return datetime.strptime(self.stamp, STAMP).replace(tzinfo=UTC)


def new_stamp(now: datetime | None = None) -> str:
    """UTC time to the millisecond, fixed width: sorting the keys sorts the backups by age."""
    return (now or datetime.now(UTC)).strftime(STAMP)[:-4] + "Z"


def aws_client(service: str, region: str | None = None):
    """A boto3 client with standard retries; AWS_ENDPOINT_URL (botocore) points it at another endpoint."""
    return boto3.client(service, region_name=region or os.environ.get("AWS_REGION") or None,
                        config=Config(retries={"mode": "standard", "max_attempts": 5}))


class ReadAhead:
    """Reads the next part in a thread while the current one uploads, so pg_dump keeps compressing instead of
    waiting on the network. At most one part waits: memory stays at about three parts, whatever the dump size."""

    def __init__(self, read: Callable[[int], bytes], size: int):
        self.parts: queue.Queue = queue.Queue(maxsize=1)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(read, size), daemon=True)
        self.thread.start()

    def _read(self, read, size) -> None:
        try:
            while not self.stopped.is_set():
                chunk = read(size)
                self._put(chunk)
                if len(chunk) < size:
                    return
        except BaseException as error:  # noqa: BLE001 handed to the consumer, which raises it
            self._put(error)

    def _put(self, item) -> None:
        while not self.stopped.is_set():
            try:
                self.parts.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def next(self) -> bytes:
        item = self.parts.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop reading (the upload failed). The thread ends when its read returns: the caller kills the producer
        (pg_dump), which closes the pipe."""
        self.stopped.set()
        with contextlib.suppress(queue.Empty):
            self.parts.get_nowait()


class BackupStore:
    """The backups of one database under s3://bucket/prefix/<database>/."""

    def __init__(self, bucket: str, prefix: str, database: str, kms_key_id: str, region: str | None = None):
        if not bucket:
            raise BackupError("BACKUP_BUCKET is not set: give the bucket for backups (the stack output "
                              "backupBucket)")
        self.bucket, self.kms_key_id = bucket, kms_key_id
        self.folder = f"{prefix.strip('/')}/{database}/" if prefix.strip("/") else f"{database}/"
        self.s3 = aws_client("s3", region)
        self.kms = aws_client("kms", region)

    def check_writable(self) -> None:
        """Fail before pg_dump starts if the bucket or the key cannot be used."""
        with aws_errors(f"opening bucket {self.bucket}", "s3:ListBucket", f"arn:aws:s3:::{self.bucket}"):
            # A one-key listing, not HeadBucket: the same permission (s3:ListBucket) on AWS, and a real error
            # body (NoSuchBucket) instead of a bare 404.
            self.s3.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        if not self.kms_key_id:
            raise BackupError("BACKUP_KMS_KEY_ID is not set: give the KMS key that encrypts backups (the stack "
                              "output backupKmsKeyArn)")
        with aws_errors(f"checking KMS key {self.kms_key_id}", "kms:DescribeKey", self.kms_key_id):
            state = self.kms.describe_key(KeyId=self.kms_key_id)["KeyMetadata"]["KeyState"]
        if state != "Enabled":
            raise BackupError(f"KMS key {self.kms_key_id} is {state}, not Enabled: enable it or set "
                              "BACKUP_KMS_KEY_ID to the stack's backup key")

    def upload(self, stamp: str, read: Callable[[int], bytes], finish: Callable[[], None], metadata: dict,
               part_size: int, compression: str | None = None) -> dict:
        """Upload what read() yields as <stamp>.dump, then the manifest (which names the compression, if any, that
        read() applied). finish() runs after the last part and raises if the producer failed: then the upload is
        aborted and nothing of it is visible."""
        if part_size < MIN_PART_SIZE:
            raise BackupError(f"part size {part_size} bytes is below S3's minimum of 5 MiB: raise "
                              "BACKUP_PART_SIZE_MB")
        key = f"{self.folder}{stamp}{DUMP}"
        where = f"s3://{self.bucket}/{key}"
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        # SSE-KMS multipart uploads need the key for both: a data key to encrypt, Decrypt to complete the upload.
        with aws_errors(f"starting the upload of {where}", "s3:PutObject, kms:GenerateDataKey and kms:Decrypt",
                         f"{where} and {self.kms_key_id}"):
            upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType="application/octet-stream", ChecksumAlgorithm="SHA256",
                Metadata=metadata, **encryption)["UploadId"]
        ahead = ReadAhead(read, part_size)
        try:
            whole, size, parts = hashlib.sha256(), 0, []
            while True:
                chunk = ahead.next()
                if not chunk and parts:
                    break
                if len(parts) == MAX_PARTS:
                    raise BackupError(f"the dump is larger than {MAX_PARTS} parts of {part_size // MiB} MiB: raise "
                                      "BACKUP_PART_SIZE_MB")
                if not chunk:
                    finish()  # pg_dump wrote nothing: it failed, and says why
                    raise BackupError("the dump is empty")
                whole.update(chunk)
                size += len(chunk)
                checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
                with aws_errors(f"uploading part {len(parts) + 1} of {where}", "s3:PutObject", where):
                    etag = self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, Body=chunk,
                                               PartNumber=len(parts) + 1, ChecksumSHA256=checksum)["ETag"]
                parts.append({"PartNumber": len(parts) + 1, "ETag": etag, "ChecksumSHA256": checksum})
                if len(chunk) < part_size:
                    break
            finish()
            with aws_errors(f"completing the upload of {where}", "s3:PutObject", where):
                self.s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            ahead.close()
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except (BotoCoreError, ClientError):
                pass  # the bucket's lifecycle removes incomplete uploads; without a manifest it is no backup
            raise
        manifest = {"format": 2 if compression else 1, "key": key, "size": size, "sha256": whole.hexdigest(),
                    "parts": len(parts), "part_size": part_size, **({"compression": compression} if compression
                                                                     else {}), **metadata}
        manifest_key = f"{self.folder}{stamp}{MANIFEST}"
        try:
            with aws_errors(f"writing the manifest s3://{self.bucket}/{manifest_key}", "s3:PutObject",
                             f"s3://{self.bucket}/{manifest_key}"):
                self.s3.put_object(Bucket=self.bucket, Key=manifest_key, Body=json.dumps(manifest, indent=2).encode(),
                                   ContentType="application/json", ChecksumAlgorithm="SHA256", **encryption)
        except BackupError:
            self._delete_quietly(key)
            raise
        return manifest

    def backups(self) -> list[Backup]:
        """Finished backups, oldest first."""
        dumps, manifests = {}, set()
        with aws_errors(f"listing s3://{self.bucket}/{self.folder}", "s3:ListBucket",
                         f"arn:aws:s3:::{self.bucket}"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.folder):
                for item in page.get("Contents", []):
                    name = item["Key"][len(self.folder):]
                    if "/" in name:
                        continue
                    if name.endswith(DUMP):
                        dumps[name[: -len(DUMP)]] = (item["Key"], item["Size"])
                    elif name.endswith(MANIFEST):
                        manifests.add(name[: -len(MANIFEST)])
        return [Backup(stamp, *dumps[stamp]) for stamp in sorted(dumps.keys() & manifests)]

    def find(self, which: str) -> Backup:
        """'latest', a stamp, or a dump key."""
        backups = self.backups()
        if not backups:
            raise BackupError(f"no backups in s3://{self.bucket}/{self.folder}: create one with "
                              "`flask backup create`")
        if which == "latest":
            return backups[-1]
        for backup in backups:
            if which in (backup.stamp, backup.key):
                return backup
        raise BackupError(f"no backup {which!r} in s3://{self.bucket}/{self.folder}; `flask backup list` shows "
                          f"them (latest: {backups[-1].stamp})")

    def manifest(self, backup: Backup) -> dict:
        where = f"s3://{self.bucket}/{backup.manifest_key}"
        with aws_errors(f"reading {where}", "s3:GetObject and kms:Decrypt", where):
            body = self.s3.get_object(Bucket=self.bucket, Key=backup.manifest_key)["Body"].read()
        try:
            manifest = json.loads(body)
            manifest["sha256"], manifest["size"]  # noqa: B018 both must be there
        except (ValueError, KeyError, TypeError):
            raise BackupError(f"{where} is not a backup manifest: the backup cannot be verified") from None
        return manifest

    def download(self, backup: Backup, manifest: dict, file) -> None:
        """Stream the dump into file and check it against the manifest before anyone uses it."""
        where = f"s3://{self.bucket}/{backup.key}"
        digest, size = hashlib.sha256(), 0
        with aws_errors(f"downloading {where}", "s3:GetObject and kms:Decrypt", where):
            body = self.s3.get_object(Bucket=self.bucket, Key=backup.key)["Body"]
            for chunk in body.iter_chunks(MiB):
                digest.update(chunk)
                size += len(chunk)
                file.write(chunk)
        file.flush()
        if size != manifest["size"] or digest.hexdigest() != manifest["sha256"]:
            raise BackupError(f"{where} does not match its manifest (size {size} vs {manifest['size']}, sha256 "
                              f"{digest.hexdigest()[:12]}... vs {manifest['sha256'][:12]}...): it was changed or "
                              "corrupted after the backup; restore another one")

    def locked_until(self, backup: Backup) -> datetime | None:
        """The latest S3 Object Lock retain-until date of the backup's objects (None: not locked). Read from each
        object's head, which shows it to whoever may s3:GetObjectRetention."""
        dates = []
        for key in (backup.manifest_key, backup.key):
            where = f"s3://{self.bucket}/{key}"
            with aws_errors(f"reading the lock of {where}", "s3:GetObject and s3:GetObjectRetention", where):
                head = self.s3.head_object(Bucket=self.bucket, Key=key)
            if head.get("ObjectLockRetainUntilDate"):
                dates.append(head["ObjectLockRetainUntilDate"])
        return max(dates) if dates else None

    def delete(self, backup: Backup) -> None:
        """The manifest first: a half-deleted backup is no longer listed as one."""
        for key in (backup.manifest_key, backup.key):
            with aws_errors(f"deleting s3://{self.bucket}/{key}", "s3:DeleteObject", f"s3://{self.bucket}/{key}"):
                self.s3.delete_object(Bucket=self.bucket, Key=key)

    def _delete_quietly(self, key: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError):
            pass


class aws_errors:  # noqa: N801 used as a context manager, reads like one
    """Turn botocore's exceptions into a BackupError saying what failed and what to check."""

    def __init__(self, doing: str, action: str, resource: str):
        self.doing, self.action, self.resource = doing, action, resource

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if isinstance(error, ClientError):
            raise BackupError(describe(error, self.doing, self.action, self.resource)) from None
        if isinstance(error, BotoCoreError):
            raise BackupError(f"{self.doing} failed: {error}") from None
        return False


def describe(error: ClientError, doing: str, action: str, resource: str) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("NoSuchBucket",) or (code == "404" and "bucket" in doing):
        return f"{doing} failed: the bucket does not exist; check BACKUP_BUCKET (the stack output backupBucket)"
    if code in ("AccessDenied", "AccessDeniedException", "403") or status == 403:
        return f"{doing} failed: access denied; the role running this needs {action} on {resource}"
    if code in ("NotFoundException", "KMS.NotFoundException"):
        return f"{doing} failed: the KMS key does not exist; check BACKUP_KMS_KEY_ID"
    if code in ("DisabledException", "KMS.DisabledException", "KMSInvalidStateException",
                "KMS.KMSInvalidStateException"):
        return f"{doing} failed: the KMS key is disabled or pending deletion; check BACKUP_KMS_KEY_ID"
    if code in ("NoSuchKey", "404"):
        return f"{doing} failed: the object does not exist"
    return f"{doing} failed: {code or status}: {message}"
