"""Migrations: `flask db upgrade` run by many containers at once, against a real PostgreSQL."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STARTS = 6


def upgrade_env(primary, name):
    return {**os.environ, "APP_ENV": "testing", "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(primary.port),
            "DATABASE_NAME": name, "DATABASE_USER": "postgres", "DATABASE_PASSWORD": primary.password,
            "PYTHONPATH": str(ROOT / "app")}


def test_concurrent_upgrades_all_succeed_and_migrate_once(postgres):
    primary, _ = postgres
    primary.create_database("migrations_race")
    flask = [sys.executable, "-m", "flask", "--app", "webapp", "db", "upgrade"]
    processes = [subprocess.Popen(flask, cwd=ROOT / "app", env=upgrade_env(primary, "migrations_race"),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(STARTS)]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * STARTS, "\n".join(outputs)
    ran = [out for out in outputs if "Running upgrade  -> 0001" in out]
    assert len(ran) == 1, "exactly one container applies the migration; the others find it done"
    assert all("migration lock held" in out and "migration lock released" in out for out in outputs)
    with primary.connect("migrations_race") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("0003",)]
        columns = connection.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                                     "WHERE table_name = 'notes' ORDER BY ordinal_position").fetchall()
        assert columns == [("id", "integer", "NO"), ("title", "character varying", "NO"), ("body", "text", "NO"),
                           ("created_at", "timestamp with time zone", "NO"),
                           ("updated_at", "timestamp with time zone", "NO")]
        locks = connection.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]
        assert locks == 0


def test_a_migration_that_cannot_get_the_lock_gives_up_with_a_clear_error(postgres):
    primary, _ = postgres
    primary.create_database("migrations_locked")
    with primary.connect("migrations_locked") as holder:
        holder.execute("SELECT pg_advisory_lock(4822310017)")  # the key in app/migrations/env.py
        env = {**upgrade_env(primary, "migrations_locked"), "MIGRATION_LOCK_WAIT_SECONDS": "1"}
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "db", "upgrade"], cwd=ROOT / "app",
                              env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "error: no migration lock after 1 s (lock timeout)" in done.stderr
    assert "Traceback" not in done.stderr
    with primary.connect("migrations_locked") as connection:
        assert connection.execute("SELECT to_regclass('notes')").fetchone()[0] is None
