"""Backup and restore speed through moto (issue 6), loopback only.

A generated database (text that compresses, and random bytes that do not) at two sizes; for each:
`flask backup create` (pg_dump streamed into a multipart upload) and `flask backup restore` into an empty database
(download, verify, pg_restore), run as the image runs them. Reported: MB/s of the database size and of the dump,
and the peak resident memory of the backup process (sampled every 20 ms; pg_dump and pg_restore are separate
processes, reported beside it). Goal: memory flat whatever the size, well under 200 MB.
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
        print("| database | pg_dump level | dump | dump+upload | MB/s (db / dump) | download+restore | "
              "MB/s (db / dump) | peak RSS backup / restore process | pg_dump / pg_restore peak |")
        print("|---|---|---|---|---|---|---|---|---|")
        flask = [sys.executable, "-m", "flask", "--app", "webapp", "backup"]
        # Every size at pg_dump's default level, and the largest again at level 1 (the speed/size trade-off).
        for size, level in [*((size, 6) for size in SIZES_MB), (SIZES_MB[-1], 1)]:
            name = f"bench_{size}"
            if level == 6:
                db_bytes = generate(server, name, size)
            run_env = {**env, "DATABASE_NAME": name, "BACKUP_COMPRESSION": str(level)}
            up, up_rss, dump_rss, _ = run_measured([*flask, "create"], run_env)
            dump_bytes = max((o["LastModified"], o["Size"]) for o in s3.list_objects_v2(
                Bucket=BUCKET, Prefix=f"postgres/{name}/")["Contents"] if o["Key"].endswith(".dump"))[1]
            target = f"{name}_restored_{level}"
            server.create_database(target)
            down, down_rss, restore_rss, _ = run_measured([*flask, "restore", "--target-database", target], run_env)
            db_mb, dump_mb = db_bytes / MB, dump_bytes / MB
            print(f"| {db_mb:.0f} MiB | {level} | {dump_mb:.0f} MiB | {up:.1f} s | {db_mb / up:.1f} / "
                  f"{dump_mb / up:.1f} | {down:.1f} s | {db_mb / down:.1f} / {dump_mb / down:.1f} | "
                  f"{up_rss:.0f} / {down_rss:.0f} MiB | {dump_rss:.0f} / {restore_rss:.0f} MiB |")
    finally:
        server.destroy()
        moto.stop()
    return 0


def _client(moto: MotoServer) -> dict:
    return {"endpoint_url": moto.endpoint, "region_name": "eu-west-1", "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing"}


if __name__ == "__main__":
    sys.exit(main())
