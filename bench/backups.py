"""Backup and restore speed through moto (issues 6 and 16), loopback only.

A generated database (text that compresses, and random bytes that do not) at two sizes; for each:
`flask backup create` (pg_dump through zstd on every core, streamed into a multipart upload) and `flask backup
restore` into an empty database (download, verify, uncompress, pg_restore), run as the image runs them. Reported:
MB/s of the database size and of the dump, and the peak resident memory of the backup process (sampled every
20 ms; pg_dump and pg_restore are separate processes, reported beside it). Goal: memory flat whatever the size,
well under 200 MB.

Beside it, on the largest database, the naive script a user would write, in the same run: `pg_dump -Fc | gzip`
into a file, then an upload of the file with boto3 (SSE-KMS, the same key). Goal (issue 16): `flask backup create`
at least 2x faster, its dump at most 110 % of the naive one's size.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import psutil

from deploy.local.servers import PostgresServer
from tests.moto_server import MotoServer

ROOT = Path(__file__).resolve().parent.parent
SIZES_MB = [int(size) for size in os.environ.get("BENCH_BACKUP_SIZES_MB", "50,220").split(",")]
BUCKET = "bench-backups"
MB = 1024 * 1024


def generate(server: PostgresServer, name: str, size_mb: int) -> int:
    """Rows of ~1.1 KB: 640 bytes of repetitive text and 512 random bytes. Returns the database size in bytes."""
    server.create_database(name)
    with server.connect(name) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        connection.execute("CREATE TABLE events (id bigint PRIMARY KEY, kind text, body text, payload bytea, "
                           "created timestamptz DEFAULT now())")
        batch = 20_000
        start = 0
        while connection.execute("SELECT pg_database_size(current_database())").fetchone()[0] < size_mb * MB:
            connection.execute("INSERT INTO events (id, kind, body, payload) SELECT g, 'kind-' || (g %% 17), "
                               "repeat(md5(g::text), 20), gen_random_bytes(512) "
                               "FROM generate_series(%s::bigint, %s::bigint) g", (start, start + batch - 1))
            start += batch
        connection.execute("VACUUM ANALYZE events")
        return connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def run_measured(command: list[str], env: dict) -> tuple[float, float, float, str]:
    """Run a command; return (seconds, peak RSS MiB of it, peak RSS MiB of its children, output)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks = {"self": 0, "children": 0}

    def sample():
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                peaks["self"] = max(peaks["self"], watched.memory_info().rss)
                for child in watched.children(recursive=True):
                    peaks["children"] = max(peaks["children"], child.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.02)
    sampler = threading.Thread(target=sample)
    sampler.start()
    output = process.communicate()[0]
    sampler.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return seconds, peaks["self"] / MB, peaks["children"] / MB, output


def main() -> int:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; PostgreSQL 15 and moto on loopback")
    moto = MotoServer().start()
    server = PostgresServer.create(name="bench-backups")
    try:
        env = {**os.environ, **moto.environment(), "PYTHONPATH": str(ROOT / "app"), "APP_ENV": "testing",
               "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(server.port), "DATABASE_USER": "postgres",
               "DATABASE_PASSWORD": server.password, "BACKUP_BUCKET": BUCKET, "APP_VERSION": "bench"}
        s3 = boto3.client("s3", **_client(moto))
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        env["BACKUP_KMS_KEY_ID"] = boto3.client("kms", **_client(moto)).create_key()["KeyMetadata"]["Arn"]
        print("| database | compression | dump | dump+upload | MB/s (db / dump) | download+restore | "
              "MB/s (db / dump) | peak RSS backup / restore process | pg_dump / pg_restore peak |")
        print("|---|---|---|---|---|---|---|---|---|")
        flask = [sys.executable, "-m", "flask", "--app", "webapp", "backup"]
        # Every size at the default zstd level (3), and the largest again at level 1 (the speed/size trade-off).
        ours = {}
        for size, level in [*((size, 3) for size in SIZES_MB), (SIZES_MB[-1], 1)]:
            name = f"bench_{size}"
            if level == 3:
                db_bytes = generate(server, name, size)
            run_env = {**env, "DATABASE_NAME": name, "BACKUP_COMPRESSION": str(level)}
            up, up_rss, dump_rss, _ = run_measured([*flask, "create"], run_env)
            dump_bytes = max((o["LastModified"], o["Size"]) for o in s3.list_objects_v2(
                Bucket=BUCKET, Prefix=f"postgres/{name}/")["Contents"] if o["Key"].endswith(".dump"))[1]
            target = f"{name}_restored_{level}"
            server.create_database(target)
            down, down_rss, restore_rss, _ = run_measured([*flask, "restore", "--target-database", target], run_env)
            db_mb, dump_mb = db_bytes / MB, dump_bytes / MB
            ours[(size, level)] = (up, dump_bytes)
            print(f"| {db_mb:.0f} MiB | zstd {level} | {dump_mb:.0f} MiB | {up:.1f} s | {db_mb / up:.1f} / "
                  f"{dump_mb / up:.1f} | {down:.1f} s | {db_mb / down:.1f} / {dump_mb / down:.1f} | "
                  f"{up_rss:.0f} / {down_rss:.0f} MiB | {dump_rss:.0f} / {restore_rss:.0f} MiB |")
        size = SIZES_MB[-1]
        naive_seconds, naive_bytes = naive_backup(server, f"bench_{size}", run_env)
        our_seconds, our_bytes = ours[(size, 3)]
        speedup, size_ratio = naive_seconds / our_seconds, our_bytes / naive_bytes
        print(f"\nnaive `pg_dump -Fc | gzip` + upload of the {db_mb:.0f} MiB database: {naive_seconds:.1f} s, "
              f"{naive_bytes / MB:.0f} MiB; flask backup create: {our_seconds:.1f} s, {our_bytes / MB:.0f} MiB: "
              f"{speedup:.2f}x as fast (target >= 2: {'met' if speedup >= 2 else 'MISSED'}), "
              f"{100 * size_ratio:.0f} % of its size (target <= 110 %: {'met' if size_ratio <= 1.1 else 'MISSED'})")
    finally:
        server.destroy()
        moto.stop()
    return 0


NAIVE = """
import os, subprocess, sys, tempfile, boto3
with tempfile.NamedTemporaryFile(suffix=".dump.gz") as file:
    subprocess.run(f"pg_dump -Fc {os.environ['DATABASE_NAME']} | gzip > {file.name}", shell=True, check=True)
    boto3.client("s3").upload_file(file.name, os.environ["BACKUP_BUCKET"], "naive/backup.dump.gz", ExtraArgs={
        "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": os.environ["BACKUP_KMS_KEY_ID"]})
    print(os.path.getsize(file.name))
"""


def naive_backup(server: PostgresServer, name: str, env: dict) -> tuple[float, int]:
    """The script a user would write: pg_dump -Fc | gzip to a file, then upload it. (seconds, bytes)"""
    libpq = {"PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGUSER": "postgres", "PGPASSWORD": server.password}
    seconds, _, _, output = run_measured([sys.executable, "-c", NAIVE], {**env, **libpq, "DATABASE_NAME": name})
    return seconds, int(output.strip().splitlines()[-1])


def _client(moto: MotoServer) -> dict:
    return {"endpoint_url": moto.endpoint, "region_name": "eu-west-1", "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing"}


if __name__ == "__main__":
    sys.exit(main())
