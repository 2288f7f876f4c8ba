"""`flask backup ...` against a real PostgreSQL and moto's S3/KMS: create, list, restore, prune, the drill, and every
bad input ending in one clear line, exit 1, nothing deleted and no partial backup visible."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import zstandard
from botocore.exceptions import ClientError
from webapp.backups import jobs
from webapp.backups.postgres import Database, fingerprints
from webapp.backups.store import BackupStore

from deploy.local.servers import PG_BIN
from tests.app.backups.conftest import BUCKET, fill, objects, uploads_in_progress

LOCKED = "webapp-backups-locked"

ROOT = Path(__file__).resolve().parents[3]


def fingerprint(server, database: str) -> dict:
    with server.connect(database) as connection:
        return fingerprints(connection)


def test_create_streams_an_encrypted_checksummed_backup_with_metadata(backup_env, flask_cli):
    s3 = backup_env["s3"]
    with backup_env["server"].connect(backup_env["database"]) as connection:
        connection.execute("CREATE TABLE blobs (id int PRIMARY KEY, data bytea)")  # 7 MiB of noise: 2 parts
        for number in range(7):
            connection.execute("INSERT INTO blobs VALUES (%s, %s)", (number, os.urandom(1024 * 1024)))
    result = flask_cli("create")
    assert result.exit_code == 0, result.output
    assert "in 2 parts" in result.output
    dump_key, manifest_key = sorted(objects(s3))
    assert dump_key.startswith(f"postgres/{backup_env['database']}/") and dump_key.endswith(".dump")
    assert manifest_key == dump_key[: -len(".dump")] + ".manifest.json"
    head = s3.head_object(Bucket=BUCKET, Key=dump_key)
    assert head["ServerSideEncryption"] == "aws:kms" and backup_env["key_arn"].endswith(head["SSEKMSKeyId"])
    assert head["Metadata"]["database"] == backup_env["database"] and head["Metadata"]["app-version"] == "1.2.3"
    assert head["Metadata"]["pg-dump-version"].startswith("pg_dump (PostgreSQL) 15")
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    body = s3.get_object(Bucket=BUCKET, Key=dump_key)["Body"].read()
    # pg_dump's custom format, uncompressed by pg_dump, compressed with zstd on the way (the manifest says so).
    assert body[:4] == b"\x28\xb5\x2f\xfd" and (manifest["format"], manifest["compression"]) == (2, "zstd")
    assert zstandard.ZstdDecompressor().decompressobj().decompress(body)[:5] == b"PGDMP"
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest() and manifest["size"] == len(body)
    assert manifest["parts"] == 2 and s3.head_object(Bucket=BUCKET, Key=manifest_key)["ServerSideEncryption"] == \
        "aws:kms"
    listed = flask_cli("list")
    assert listed.exit_code == 0 and "1 backups of" in listed.output and dump_key in listed.output


def test_restore_into_an_empty_database_gives_back_every_row(backup_env, flask_cli, empty_database):
    server, source = backup_env["server"], backup_env["database"]
    assert flask_cli("create").exit_code == 0
    result = flask_cli("restore", "--target-database", empty_database)
    assert result.exit_code == 0, result.output
    assert "public.notes: 500 rows" in result.output and "audit.events: 2 rows" in result.output
    assert fingerprint(server, empty_database) == fingerprint(server, source)


def test_restore_refuses_a_non_empty_target_unless_forced(backup_env, flask_cli, empty_database):
    server = backup_env["server"]
    assert flask_cli("create").exit_code == 0
    with server.connect(empty_database) as connection:
        connection.execute("CREATE TABLE notes (id int)")
        connection.execute("INSERT INTO notes VALUES (42)")
        connection.execute("CREATE TABLE theirs (id int)")  # not in the dump: kept, and not reported as restored
    refused = flask_cli("restore", "--target-database", empty_database)
    assert refused.exit_code == 1 and "is not empty (2 tables: public.notes, public.theirs)" in refused.output
    assert "--force" in refused.output and "Traceback" not in refused.output
    with server.connect(empty_database) as connection:
        assert connection.execute("SELECT id FROM notes").fetchall() == [(42,)]  # untouched
    forced = flask_cli("restore", "--target-database", empty_database, "--force")
    assert forced.exit_code == 0, forced.output
    assert "public.notes: 500 rows" in forced.output and "theirs" not in forced.output
    restored = fingerprint(server, empty_database)
    assert restored.pop("public.theirs") == (0, "0:0")
    assert restored == fingerprint(server, backup_env["database"])


def test_the_drill_passes_while_the_source_keeps_changing(backup_env, flask_cli):
    """The dump and the source's fingerprints share one snapshot: writes during the drill cannot fail it."""
    server, source = backup_env["server"], backup_env["database"]
    stop, written = threading.Event(), []

    def writer():
        with server.connect(source) as connection:
            while not stop.is_set():
                connection.execute("INSERT INTO notes (title) VALUES ('during the drill')")
                written.append(1)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = flask_cli("drill")
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    assert "drill passed" in result.output and "ok       public.notes: source" in result.output
    assert len(written) > 10  # the source really changed meanwhile
    with server.connect() as connection:  # the scratch database is gone
        assert connection.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'restore_drill_%'") \
            .fetchone()[0] == 0
    assert len([key for key in objects(backup_env["s3"]) if key.endswith(".manifest.json")]) == 1  # a real backup


def test_the_drill_fails_when_the_restored_data_differs(backup_env, flask_cli, monkeypatch):
    real_restore = jobs.restore

    def lossy_restore(target, path, clean):
        real_restore(target, path, clean)
        with target.connect() as connection:
            connection.execute("DELETE FROM notes WHERE id = 7")
    monkeypatch.setattr(jobs, "restore", lossy_restore)
    result = flask_cli("drill")
    assert result.exit_code == 1
    assert "MISMATCH public.notes: source 500 rows, restored 499 rows" in result.output
    assert "drill FAILED" in result.output and "ok       audit.events" in result.output


def test_prune_keeps_the_retention_and_always_the_newest(backup_env):
    database = Database.from_url(f"postgresql://postgres:{backup_env['server'].password}@127.0.0.1:"
                                 f"{backup_env['server'].port}/{backup_env['database']}")
    store = BackupStore(BUCKET, "postgres", database.name, backup_env["key_arn"])
    made = [jobs.create_backup(store, database, "1", 5 * 1024 * 1024)[0] for _ in range(3)]
    assert store.backups() == made
    # 10 days later, retention 7: every backup has expired, the newest is still kept.
    later = made[-1].created + timedelta(days=10)
    dry = jobs.prune(store, 7, dry_run=True, now=later)
    assert dry.deleted == made[:2] and dry.kept == made[2:] and store.backups() == made  # dry run deletes nothing
    pruned = jobs.prune(store, 7, now=later)
    assert store.backups() == made[2:] == pruned.kept and pruned.locked == {}
    assert len(objects(backup_env["s3"])) == 2  # the newest's dump and manifest
    # Within the retention nothing goes.
    assert jobs.prune(store, 7, now=made[-1].created + timedelta(days=1)).deleted == []


def test_prune_reports_backups_under_object_lock_and_forces_nothing(backup_env, flask_cli, monkeypatch):
    """A bucket under S3 Object Lock (governance, 30 days) and a retention of 7: ten days on, the older backups are
    past the retention but still locked: prune lists them as kept and deletes nothing, not even with a delete
    marker; once the lock has passed, it deletes them. (moto does not lock what a multipart upload completes, as
    S3 does: the test puts the dumps' retention itself.)"""
    from datetime import UTC, datetime

    s3 = backup_env["s3"]
    s3.create_bucket(Bucket=LOCKED, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
                     ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=LOCKED, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
    database = Database.from_url(f"postgresql://postgres:{backup_env['server'].password}@127.0.0.1:"
                                 f"{backup_env['server'].port}/{backup_env['database']}")
    store = BackupStore(LOCKED, "postgres", database.name, backup_env["key_arn"])
    made = [jobs.create_backup(store, database, "1", 5 * 1024 * 1024)[0] for _ in range(3)]
    until = datetime.now(UTC) + timedelta(days=30)
    for backup in made:
        s3.put_object_retention(Bucket=LOCKED, Key=backup.key,
                                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    assert store.locked_until(made[0]) >= until - timedelta(seconds=1)

    pruned = jobs.prune(store, 7, now=made[-1].created + timedelta(days=10))
    assert pruned.deleted == [] and pruned.kept == made and list(pruned.locked) == made[:2]
    assert store.backups() == made
    assert not [m for m in s3.list_object_versions(Bucket=LOCKED).get("DeleteMarkers", [])]
    # And S3 itself refuses a locked version to whoever does not ask to bypass governance.
    version = s3.head_object(Bucket=LOCKED, Key=made[0].manifest_key)["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=LOCKED, Key=made[0].manifest_key, VersionId=version)

    # The command says which backups the lock holds, and until when; ten days on, as above.
    class TenDaysOn(datetime):
        @classmethod
        def now(cls, tz=None):
            return made[-1].created + timedelta(days=10)

    with monkeypatch.context() as patched:
        patched.setenv("BACKUP_BUCKET", LOCKED)
        patched.setenv("BACKUP_PREFIX", "postgres")
        patched.setattr(jobs, "datetime", TenDaysOn)
        result = flask_cli("prune", "--older-than-days", "7")
    assert result.exit_code == 0, result.output
    assert f"kept {made[0].stamp} {made[0].key}: past the retention, but under S3 Object Lock until " \
           f"{until:%Y-%m-%d}" in result.output and "(not forced)" in result.output
    assert "0 deleted, 3 kept (retention 7 days)" in result.output and store.backups() == made

    after = jobs.prune(store, 7, now=until + timedelta(days=1))
    assert after.deleted == made[:2] and after.locked == {} and store.backups() == made[2:]


def test_prune_command(backup_env, flask_cli):
    created = flask_cli("create", "--prune")  # what the scheduled task runs
    assert created.exit_code == 0 and "pruned 0 backups older than 7 days, 1 kept" in created.output
    result = flask_cli("prune", "--older-than-days", "1")
    assert result.exit_code == 0 and "0 deleted, 1 kept (retention 1 days)" in result.output
    refused = flask_cli("prune", "--older-than-days", "0")
    assert refused.exit_code == 1 and "give at least 1 day" in refused.output


def test_nothing_is_visible_when_pg_dump_is_refused_a_table(backup_env, flask_cli, monkeypatch):
    """A role that may not read one table: pg_dump fails before its first byte; the upload is aborted."""
    server, source = backup_env["server"], backup_env["database"]
    with server.connect(source) as connection:
        connection.execute("DROP ROLE IF EXISTS limited")
        connection.execute("CREATE ROLE limited LOGIN PASSWORD 'limited-password'")
        connection.execute("GRANT SELECT ON notes TO limited")  # not audit.events
        connection.execute("GRANT USAGE ON SCHEMA audit TO limited")
    monkeypatch.setenv("DATABASE_USER", "limited")
    monkeypatch.setenv("DATABASE_PASSWORD", "limited-password")
    result = flask_cli("create")
    assert result.exit_code == 1 and "pg_dump of database" in result.output
    assert "permission denied for table events" in result.output
    assert objects(backup_env["s3"]) == [] and uploads_in_progress(backup_env["s3"]) == []
    assert flask_cli("list").output.strip().endswith("0 backups of " + source)


def test_a_drill_refused_by_postgresql_is_one_line_and_leaves_the_backup(backup_env, flask_cli, monkeypatch):
    """A role that can dump everything but may not create the scratch database."""
    server, source = backup_env["server"], backup_env["database"]
    with server.connect(source) as connection:
        connection.execute("DROP ROLE IF EXISTS dumper")
        connection.execute("CREATE ROLE dumper LOGIN PASSWORD 'dumper-password'")  # no CREATEDB
        connection.execute("GRANT USAGE ON SCHEMA audit TO dumper")
        connection.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public, audit TO dumper")
        connection.execute("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO dumper")
    monkeypatch.setenv("DATABASE_USER", "dumper")
    monkeypatch.setenv("DATABASE_PASSWORD", "dumper-password")
    result = flask_cli("drill")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "PostgreSQL refused: permission denied to create database" in result.output
    assert len(objects(backup_env["s3"])) == 2  # the backup itself was made and stays


def big_source(backup_env, megabytes: int = 12) -> None:
    """Enough incompressible data for three 5 MiB parts."""
    with backup_env["server"].connect(backup_env["database"]) as connection:
        connection.execute("CREATE TABLE blobs (id int PRIMARY KEY, data bytea)")
        for number in range(megabytes):
            connection.execute("INSERT INTO blobs VALUES (%s, %s)", (number, os.urandom(1024 * 1024)))


def test_pg_dump_dying_after_parts_were_uploaded_leaves_nothing(backup_env, flask_cli, monkeypatch, tmp_path):
    """pg_dump failing once parts are in S3 (here a stand-in that writes 12 MiB, then fails as pg_dump does when
    its connection drops): its exit code fails the backup, the upload is aborted."""
    from webapp.backups.compression import Compressed

    fake = tmp_path / "pg_dump"
    fake.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 15.18"; exit 0; fi\n'
                    "head -c 12582912 /dev/urandom\necho 'pg_dump: error: server closed the connection' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    real_read, reads = Compressed.read, []

    def counted(self, size):
        chunk = real_read(self, size)
        reads.append(len(chunk))
        return chunk
    monkeypatch.setattr(Compressed, "read", counted)
    result = flask_cli("create")
    assert result.exit_code == 1 and "pg_dump of database" in result.output and "failed (exit 1)" in result.output
    assert "server closed the connection" in result.output
    assert reads[0] == 5 * 1024 * 1024 and len(reads) >= 2  # parts went up before the failure
    assert objects(backup_env["s3"]) == [] and uploads_in_progress(backup_env["s3"]) == []


def test_an_upload_failing_half_way_leaves_nothing(backup_env, flask_cli, monkeypatch):
    """S3 refusing the second part (a network or permission failure mid-way): aborted, pg_dump stopped."""
    from botocore.exceptions import ClientError
    from webapp.backups.store import BackupStore

    big_source(backup_env)
    real_init = BackupStore.__init__

    def failing_second_part(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        real_upload_part, calls = self.s3.upload_part, []

        def upload_part(**params):
            calls.append(params["PartNumber"])
            if params["PartNumber"] == 2:
                raise ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"},
                                   "ResponseMetadata": {"HTTPStatusCode": 500}}, "UploadPart")
            return real_upload_part(**params)
        self.s3.upload_part = upload_part
    monkeypatch.setattr(BackupStore, "__init__", failing_second_part)
    result = flask_cli("create")
    assert result.exit_code == 1 and "uploading part 2 of s3://" in result.output and "InternalError" in result.output
    assert objects(backup_env["s3"]) == [] and uploads_in_progress(backup_env["s3"]) == []


def test_an_unreachable_database_is_reported_before_any_upload(backup_env, flask_cli, monkeypatch):
    from deploy.local.servers import free_port

    monkeypatch.setenv("DATABASE_PORT", str(free_port()))
    result = flask_cli("create")
    assert result.exit_code == 1 and "cannot connect to database" in result.output
    assert "Check that it runs" in result.output and "Traceback" not in result.output
    assert objects(backup_env["s3"]) == [] and uploads_in_progress(backup_env["s3"]) == []


@pytest.mark.parametrize("problem, expected", [
    ("missing bucket", "the bucket does not exist; check BACKUP_BUCKET"),
    ("unknown key", "the KMS key does not exist; check BACKUP_KMS_KEY_ID"),
    ("disabled key", "is Disabled, not Enabled"),
    ("no bucket set", "BACKUP_BUCKET is not set"),
])
def test_bad_bucket_or_key_is_one_clear_line(problem, expected, backup_env, flask_cli, monkeypatch):
    if problem == "missing bucket":
        monkeypatch.setenv("BACKUP_BUCKET", "no-such-backup-bucket")
    elif problem == "unknown key":
        monkeypatch.setenv("BACKUP_KMS_KEY_ID", "arn:aws:kms:eu-west-1:123456789012:key/"
                                                "00000000-0000-0000-0000-000000000000")
    elif problem == "disabled key":
        backup_env["kms"].disable_key(KeyId=backup_env["key_arn"].rsplit("/", 1)[-1])
    else:
        monkeypatch.setenv("BACKUP_BUCKET", "")
    result = flask_cli("create")
    assert result.exit_code == 1 and expected in result.output and "Traceback" not in result.output
    assert objects(backup_env["s3"]) == [] and uploads_in_progress(backup_env["s3"]) == []


@pytest.mark.parametrize("command", [["create"], ["prune", "--older-than-days", "3"]])
def test_a_setting_that_is_not_a_number_is_one_clear_line(command, backup_env, flask_cli, monkeypatch):
    """The commands read BACKUP_* when they run (backups/settings.py), not create_app: the same one line."""
    monkeypatch.setenv("BACKUP_RETENTION_DAYS", "a week")
    result = flask_cli(*command)
    assert result.exit_code == 1 and "Error: BACKUP_RETENTION_DAYS='a week' is not a whole number" in result.output
    assert "Traceback" not in result.output and objects(backup_env["s3"]) == []


def test_a_changed_dump_fails_its_checksum_and_restores_nothing(backup_env, flask_cli, empty_database):
    s3 = backup_env["s3"]
    assert flask_cli("create").exit_code == 0
    dump_key = next(key for key in objects(s3) if key.endswith(".dump"))
    body = bytearray(s3.get_object(Bucket=BUCKET, Key=dump_key)["Body"].read())
    body[len(body) // 2] ^= 0xFF  # one flipped byte
    s3.put_object(Bucket=BUCKET, Key=dump_key, Body=bytes(body))
    result = flask_cli("restore", "--target-database", empty_database)
    assert result.exit_code == 1 and "does not match its manifest" in result.output
    assert fingerprint(backup_env["server"], empty_database) == {}  # nothing restored
    assert len(objects(s3)) == 2  # nothing deleted


def replace_backup(backup_env, body: bytes, **manifest_changes) -> None:
    """Put `body` in place of the one backup's dump, with a manifest that matches it (as a backup broken when it
    was made would have)."""
    s3 = backup_env["s3"]
    dump_key, manifest_key = sorted(objects(s3))
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    manifest.update(size=len(body), sha256=hashlib.sha256(body).hexdigest(), **manifest_changes)
    manifest = {key: value for key, value in manifest.items() if value is not None}
    s3.put_object(Bucket=BUCKET, Key=dump_key, Body=body)
    s3.put_object(Bucket=BUCKET, Key=manifest_key, Body=json.dumps(manifest).encode())


def old_format_dump(backup_env) -> bytes:
    """What backups made before zstd hold: pg_dump's custom format compressed by pg_dump itself (zlib, level 6)."""
    server = backup_env["server"]
    return subprocess.run([str(PG_BIN / "pg_dump"), "--format=custom", "--compress=6", "-h", "127.0.0.1", "-p",
                           str(server.port), "-U", "postgres", backup_env["database"]], check=True,
                          capture_output=True, env={**os.environ, "PGPASSWORD": server.password}).stdout


def test_a_corrupt_dump_with_a_matching_manifest_restores_nothing(backup_env, flask_cli, empty_database):
    """A dump broken when it was made (cut short) passes its checksum; its compressed data ends too soon."""
    s3 = backup_env["s3"]
    assert flask_cli("create").exit_code == 0
    dump_key, _ = sorted(objects(s3))
    replace_backup(backup_env, s3.get_object(Bucket=BUCKET, Key=dump_key)["Body"].read()[:-2000])
    result = flask_cli("restore", "--target-database", empty_database)
    assert result.exit_code == 1 and "it was cut short when it was made" in result.output
    assert fingerprint(backup_env["server"], empty_database) == {}


def test_backups_made_before_zstd_still_restore(backup_env, flask_cli, empty_database):
    server, source = backup_env["server"], backup_env["database"]
    assert flask_cli("create").exit_code == 0
    replace_backup(backup_env, old_format_dump(backup_env), format=1, compression=None)
    result = flask_cli("restore", "--target-database", empty_database)
    assert result.exit_code == 0, result.output
    assert fingerprint(server, empty_database) == fingerprint(server, source)


def test_a_corrupt_old_format_dump_restores_nothing(backup_env, flask_cli, empty_database):
    """pg_restore runs in one transaction: a dump that breaks half way leaves the target as it was."""
    assert flask_cli("create").exit_code == 0
    replace_backup(backup_env, old_format_dump(backup_env)[:-2000], format=1, compression=None)
    result = flask_cli("restore", "--target-database", empty_database)
    assert result.exit_code == 1 and "pg_restore into database" in result.output
    assert "nothing was restored" in result.output
    assert fingerprint(backup_env["server"], empty_database) == {}


def test_restore_of_an_unknown_backup_lists_what_exists(backup_env, flask_cli, empty_database):
    assert "no backups in s3://" in flask_cli("restore", "--target-database", empty_database).output
    assert flask_cli("create").exit_code == 0
    result = flask_cli("restore", "--backup", "20200101T000000.000Z", "--target-database", empty_database)
    assert result.exit_code == 1 and "`flask backup list` shows them (latest: " in result.output


def test_the_image_command_runs_through_the_entrypoint(backup_env, tmp_path):
    """What the scheduled task runs: entrypoint.sh (preflight) then `flask --app webapp backup create`, production
    configuration."""
    env = {**os.environ, **backup_env["env"], "APP_ENV": "production", "SECRET_KEY": "k" * 48,
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT / "app")}
    result = subprocess.run([str(ROOT / "app" / "entrypoint.sh"), "flask", "--app", "webapp", "backup", "create"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "configuration ok: APP_ENV=production" in result.stderr and "backup " in result.stdout
    assert len(objects(backup_env["s3"])) == 2


def test_fingerprints_see_every_table_and_any_changed_row(postgres):
    """The comparison the drill and these tests rely on: every table, order-independent, and one changed value
    changes the checksum."""
    primary, _ = postgres
    primary.create_database("fingerprint_check")
    try:
        with primary.connect("fingerprint_check") as connection:
            fill(connection)
            before = fingerprints(connection)
            assert set(before) == {"audit.events", "public.empty_table", "public.notes"}
            assert before["public.notes"][0] == 500 and before["public.empty_table"] == (0, "0:0")
            connection.execute("CLUSTER notes USING notes_pkey")  # same rows, another physical order
            assert fingerprints(connection) == before
            connection.execute("UPDATE notes SET price = price + 0.01 WHERE id = 250")
            after = fingerprints(connection)
            assert after["public.notes"][0] == 500 and after["public.notes"][1] != before["public.notes"][1]
    finally:
        with primary.connect() as connection:
            connection.execute('DROP DATABASE IF EXISTS "fingerprint_check" WITH (FORCE)')
