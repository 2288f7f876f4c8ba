"""Fixtures for the backup tests: a source database with data on the session's PostgreSQL, and a backup bucket
with a KMS key on moto."""

from __future__ import annotations

import os
import uuid

import boto3
import pytest

BUCKET = "webapp-backups-test"
APP_KEYS = ("DATABASE_URL", "DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD",
            "DATABASE_REPLICA_HOSTS", "REDIS_URL", "BACKUP_BUCKET", "BACKUP_KMS_KEY_ID", "BACKUP_PREFIX",
            "BACKUP_PART_SIZE_MB", "BACKUP_RETENTION_DAYS", "SECRET_KEY")


def fill(connection, blob_bytes: int = 0) -> None:
    """Tables of several shapes: text, NULLs, JSON, timestamps, numerics, bytea, a second schema, an empty table."""
    connection.execute("CREATE TABLE notes (id bigserial PRIMARY KEY, title text NOT NULL, body text, "
                       "meta jsonb, created timestamptz DEFAULT now(), price numeric(10, 2))")
    connection.execute("INSERT INTO notes (title, body, meta, price) SELECT 'note ' || g, "
                       "CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('x', g % 50) END, "
                       "jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g)), g * 1.25 "
                       "FROM generate_series(1, 500) g")
    connection.execute("CREATE SCHEMA audit")
    connection.execute("CREATE TABLE audit.events (id int PRIMARY KEY, what text, payload bytea)")
    connection.execute("INSERT INTO audit.events VALUES (1, 'created', '\\x00ff'), (2, 'quote''s', NULL)")
    connection.execute("CREATE TABLE empty_table (id int)")
    if blob_bytes:
        connection.execute("CREATE TABLE blobs (id int PRIMARY KEY, data bytea)")
        size = 1024 * 1024
        for number in range(max(1, blob_bytes // size)):
            connection.execute("INSERT INTO blobs VALUES (%s, %s)", (number, os.urandom(size)))


def objects(s3) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def uploads_in_progress(s3) -> list[str]:
    return [upload["Key"] for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


@pytest.fixture
def source(postgres):
    """A fresh database with data; returns (server, name)."""
    primary, _ = postgres
    name = f"source_{uuid.uuid4().hex[:8]}"
    primary.create_database(name)
    with primary.connect(name) as connection:
        fill(connection)
    yield primary, name
    with primary.connect() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_database(postgres):
    primary, _ = postgres
    name = f"target_{uuid.uuid4().hex[:8]}"
    primary.create_database(name)
    yield name
    with primary.connect() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def backup_env(aws, source, monkeypatch):
    """The app's environment for backups of `source`: bucket and KMS key on moto; returns a dict of handy things."""
    primary, name = source
    for key in APP_KEYS:
        monkeypatch.delenv(key, raising=False)
    s3, kms = boto3.client("s3"), boto3.client("kms")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    key_arn = kms.create_key(Description="backups")["KeyMetadata"]["Arn"]
    env = {"APP_ENV": "testing", "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(primary.port),
           "DATABASE_NAME": name, "DATABASE_USER": "postgres", "DATABASE_PASSWORD": primary.password,
           "BACKUP_BUCKET": BUCKET, "BACKUP_KMS_KEY_ID": key_arn, "BACKUP_PART_SIZE_MB": "5",
           "APP_VERSION": "1.2.3"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {"env": env, "s3": s3, "kms": kms, "key_arn": key_arn, "server": primary, "database": name}


@pytest.fixture
def flask_cli(backup_env):
    """Run `flask backup ...` in this process, as the image runs it; returns the click result."""
    def run(*args):
        from webapp import create_app

        return create_app().test_cli_runner().invoke(args=["backup", *args])
    return run
