"""Config classes: development runs with nothing installed; production refuses what is unsafe."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from webapp import config, create_app

ROOT = Path(__file__).resolve().parents[2]
STRONG = "k" * 48


def test_development_is_the_default_and_needs_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv("APP_ENV")
    monkeypatch.setenv("SQLITE_PATH", str(tmp_path / "dev.sqlite3"))
    settings = config.load()
    assert settings.ENV_NAME == "development" and settings.DEBUG
    assert settings.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///") and settings.REDIS_URL == ""
    app = create_app()
    assert app.test_client().get("/health").json == {"status": "ok"}


@pytest.mark.parametrize("env,message", [
    ({"SECRET_KEY": STRONG}, "no database: set DATABASE_URL"),
    ({"SECRET_KEY": STRONG, "DATABASE_URL": "sqlite:///app.db"}, "the database is SQLite"),
    ({"DATABASE_HOST": "db", "SECRET_KEY": STRONG, "FLASK_DEBUG": "1"}, "DEBUG is on"),
])
@pytest.mark.parametrize("env_name", ["production", "staging"])
def test_production_refuses_unsafe_settings(monkeypatch, env, message, env_name):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(config.ConfigError, match=message):
        config.load(env_name)


@pytest.mark.parametrize("key,message", [
    ("", "SECRET_KEY is not set"),
    ("short", "SECRET_KEY has 5 characters"),
    (config.DEV_SECRET_KEY, "SECRET_KEY is the development default"),
])
@pytest.mark.parametrize("env_name", ["production", "staging"])
def test_serving_refuses_a_weak_signing_key(monkeypatch, key, message, env_name):
    """Only a process that serves HTTP signs anything: Gunicorn's preflight (--serve) checks the key, the
    migration step and the backup jobs run without one."""
    monkeypatch.setenv("DATABASE_HOST", "db")
    monkeypatch.setenv("SECRET_KEY", key)
    settings = config.load(env_name)
    with pytest.raises(config.ConfigError, match=message):
        settings.validate_serving()
    monkeypatch.setenv("SECRET_KEY", STRONG)
    config.load(env_name).validate_serving()


def test_several_problems_are_named_together(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "true")
    monkeypatch.setenv("REDIS_CA_CERTS", "/nonexistent/ca.pem")
    with pytest.raises(config.ConfigError) as caught:
        config.load("production")
    assert "DEBUG is on" in str(caught.value) and "REDIS_CA_CERTS=/nonexistent/ca.pem" in str(caught.value)
    assert "no database" in str(caught.value)


def test_production_accepts_a_proper_configuration(monkeypatch):
    for key, value in {"DATABASE_HOST": "db.internal", "DATABASE_PASSWORD": "p@ss/word", "SECRET_KEY": STRONG,
                       "DATABASE_REPLICA_HOSTS": "r1.internal, r2.internal:5433", "REDIS_HOST": "cache.internal",
                       "REDIS_AUTH_TOKEN": "t#k&n", "REDIS_TLS": "true", "DB_POOL_SIZE": "7"}.items():
        monkeypatch.setenv(key, value)
    settings = config.load("production")
    assert settings.SESSION_COOKIE_SECURE and settings.SESSION_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == "Lax" and not settings.DEBUG
    assert settings.SQLALCHEMY_DATABASE_URI == \
        "postgresql+psycopg://postgres:p%40ss%2Fword@db.internal:5432/app?sslmode=prefer"
    replica = list(settings.SQLALCHEMY_BINDS.values())[1]
    assert replica["url"].startswith("postgresql+psycopg://postgres:p%40ss%2Fword@r2.internal:5433/app")
    assert (replica["pool_size"], replica["pool_pre_ping"]) == (7, False)
    # The AUTH token reaches each new connection from webapp.credentials, never through the URL.
    assert settings.REDIS_URL == "rediss://cache.internal:6379/0" and settings.REDIS_AUTH_TOKEN == "t#k&n"
    options = settings.SQLALCHEMY_ENGINE_OPTIONS
    assert (options["pool_size"], options["max_overflow"], options["pool_pre_ping"]) == (7, 2, False)
    assert options["pool_recycle"] == 300


def test_verified_tls_and_credentials_from_a_secret_shape_the_url(monkeypatch, tmp_path):
    bundle = tmp_path / "rds-global-bundle.pem"
    bundle.write_text("certificates")
    for key, value in {"DATABASE_HOST": "db.internal", "DATABASE_SSLMODE": "verify-full",
                       "DATABASE_SSLROOTCERT": str(bundle), "DATABASE_SECRET_ARN": "arn:runtime",
                       "DATABASE_USER": "ignored", "DATABASE_PASSWORD": "ignored"}.items():
        monkeypatch.setenv(key, value)
    settings = config.load("production")
    # No credentials in the URL: each new connection logs in with the secret's current user and password.
    assert settings.SQLALCHEMY_DATABASE_URI == \
        f"postgresql+psycopg://db.internal:5432/app?sslmode=verify-full&sslrootcert={bundle}"


@pytest.mark.parametrize("key,value", [("APP_ENV", "prod"), ("DB_POOL_SIZE", "five"), ("REDIS_TLS", "maybe")])
def test_malformed_environment_values_are_named(monkeypatch, key, value):
    monkeypatch.setenv(key, value)
    monkeypatch.setenv("REDIS_HOST", "cache")
    monkeypatch.setenv("DATABASE_HOST", "db")
    with pytest.raises(config.ConfigError, match=key):
        config.load(None if key == "APP_ENV" else "testing")


def test_preflight_refuses_with_one_line_and_exit_2(tmp_path):
    env = {"APP_ENV": "production", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "webapp.preflight"], cwd=ROOT / "app", env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    line = json.loads(done.stderr)  # JSON, like every line the container writes
    assert line["level"] == "ERROR" and line["logger"] == "webapp.preflight"
    assert line["message"].startswith("error: refusing to start with APP_ENV=production")
    assert "Traceback" not in done.stderr


def test_preflight_refuses_a_backup_setting_that_is_not_a_number():
    """The backup tasks start through the entrypoint too, so preflight refuses a bad BACKUP_* value as well."""
    env = {"APP_ENV": "testing", "BACKUP_PART_SIZE_MB": "eight", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "webapp.preflight"], cwd=ROOT / "app", env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert json.loads(done.stderr)["message"] == "error: BACKUP_PART_SIZE_MB='eight' is not a whole number"


def test_replicas_share_the_primarys_credentials_whether_from_database_url_or_parts(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://app:s3cret@db.internal:5432/appdb?sslmode=require")
    monkeypatch.setenv("DATABASE_REPLICA_HOSTS", "r1.internal,r2.internal:6432")
    binds = config.load("testing").SQLALCHEMY_BINDS
    assert [b["url"] for b in binds.values()] == [
        "postgresql+psycopg://app:s3cret@r1.internal:5432/appdb?sslmode=require",
        "postgresql+psycopg://app:s3cret@r2.internal:6432/appdb?sslmode=require"]
