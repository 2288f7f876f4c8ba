"""Credential rotation under load: Gunicorn (the real entrypoint and config) serving with the runtime login from
Secrets Manager (moto), while the login rotates the way AWS's multi-user rotation function rotates it (the database
first, then the secret); no request fails or stalls, and the worker re-reads the secret once."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import boto3
import psycopg
import pytest
import requests
from webapp.roles import Declared, reconcile

from deploy.local.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
MASTER = ("rotation_admin", "admin-password-1")
OWNER, RUNTIME = ("rotation_owner", "owner-password-1"), ("rotation_runtime", "runtime-password-1")
DATABASE = "rotation_app"


def connect(server, user: str, password: str, database: str = DATABASE) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=server.port, user=user, password=password, dbname=database,
                           autocommit=True, connect_timeout=5)


@pytest.fixture
def database(postgres):
    """The application's database, its roles and tables, as the migration step leaves them."""
    primary, _ = postgres
    with primary.connect() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        for role in (RUNTIME[0] + "_clone", RUNTIME[0], OWNER[0]):
            c.execute(f'DROP ROLE IF EXISTS "{role}"')
    primary.create_master(*MASTER, DATABASE)
    with connect(primary, *MASTER) as master:
        reconcile(master, Declared.of(OWNER, RUNTIME))
    with connect(primary, *OWNER) as owner:
        owner.execute("CREATE TABLE notes (id serial PRIMARY KEY, title varchar(200) NOT NULL, body text NOT NULL, "
                      "created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)")
        owner.execute("INSERT INTO notes (title, body, created_at, updated_at) VALUES ('n', 'b', now(), now())")
    return primary


def put(secret_id: str, username: str, password: str) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=json.dumps({
        "engine": "postgres", "host": "127.0.0.1", "username": username, "password": password, "dbname": DATABASE}))


def test_no_request_fails_while_the_runtime_login_rotates(database, aws, tmp_path):
    arn = boto3.client("secretsmanager").create_secret(Name="runtime", SecretString="{}")["ARN"]
    put(arn, *RUNTIME)
    port = free_port()
    env = {**os.environ, "APP_ENV": "staging", "SECRET_KEY": "s" * 48, "DATABASE_HOST": "127.0.0.1",
           "DATABASE_PORT": str(database.port), "DATABASE_NAME": DATABASE, "DATABASE_SECRET_ARN": arn,
           # Every checkout after a second opens a new connection: each new login meets the rotation.
           "DB_POOL_RECYCLE": "1", "PORT": str(port), "BIND_HOST": "127.0.0.1", "WEB_CONCURRENCY": "1",
           "GUNICORN_THREADS": "4", "PYTHONPATH": str(APP),
           "RATE_LIMIT_PER_ADDRESS": "1000000 per minute",  # one client hammering on purpose
           "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"}
    for key in ("REDIS_URL", "DATABASE_REPLICA_HOSTS", "DATABASE_USER", "DATABASE_PASSWORD"):
        env.pop(key, None)
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(APP / "entrypoint.sh")], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    results: list[int] = []
    slowest = [0.0]
    stop = threading.Event()

    def client():
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    response = session.get(f"{base}/api/notes/1", timeout=30)
                    results.append(response.status_code)
                    slowest[0] = max(slowest[0], response.elapsed.total_seconds())
                except requests.RequestException:
                    results.append(0)
    try:
        wait_until(lambda: requests.get(f"{base}/health", timeout=1).ok, 60, "gunicorn")
        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        wait_until(lambda: len(results) > 200, 60, "load before the rotation")
        with connect(database, *MASTER) as master:
            # First rotation: AWS's function creates the clone (setSecret) and moves the secret to it
            # (finishSecret). The process still holds the original login, which still works.
            clone = (RUNTIME[0] + "_clone", "clone-password-2")
            master.execute(f"CREATE ROLE {clone[0]} WITH LOGIN PASSWORD '{clone[1]}'")
            master.execute(f"GRANT {RUNTIME[0]} TO {clone[0]}")
            put(arn, *clone)
            before_second = len(results)
            wait_until(lambda: len(results) > before_second + 200, 60, "load between the rotations")
            # Second rotation: the original login gets a new password (setSecret) before the secret moves back to
            # it (finishSecret). In between, the process is refused at its next login and re-reads the secret:
            # the clone's login, which still works.
            master.execute(f"ALTER ROLE {RUNTIME[0]} WITH PASSWORD 'runtime-password-3'")
            wait_until(lambda: "credentials re-read from Secrets Manager" in log.read_text(), 60,
                       "the worker re-reading the secret after its login was refused")
            put(arn, RUNTIME[0], "runtime-password-3")
        after = len(results)
        wait_until(lambda: len(results) > after + 400, 60, "load after the re-read")
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
    finally:
        stop.set()
        process.terminate()
        process.wait(timeout=60)
    failed = [status for status in results if status != 200]
    assert failed == [] and len(results) > 800, (len(failed), len(results))
    # A re-read is one call: nothing waits the seconds of jitter the caching client's forced refresh would.
    assert slowest[0] < 2.0, slowest
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    refreshes = [line for line in lines if line.get("message") == "credentials re-read from Secrets Manager"]
    assert len(refreshes) == 1, refreshes
    assert refreshes[0]["reason"] == f"PostgreSQL refused user {RUNTIME[0]}"
    with connect(database, "postgres", database.password, "postgres") as superuser:
        assert superuser.execute("SELECT rolname FROM pg_roles WHERE rolname = %s", (RUNTIME[0] + "_clone",)
                                 ).fetchone()
