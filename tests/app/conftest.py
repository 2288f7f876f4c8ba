"""Fixtures for the application tests: a migrated database per module on the session's real PostgreSQL
(tests/conftest.py), Redis, and app/client fixtures (flaskr / cookiecutter-flask style)."""

from __future__ import annotations

import secrets

import pytest

APP_ENV_KEYS = ("APP_ENV", "DATABASE_URL", "DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER",
                "DATABASE_PASSWORD", "DATABASE_REPLICA_HOSTS", "REDIS_URL", "REDIS_HOST", "SECRET_KEY",
                "PROXY_COUNT", "FLASK_DEBUG", "SENTRY_DSN", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DATABASE_SSLMODE",
                "DATABASE_SSLROOTCERT", "DATABASE_SECRET_ARN", "REDIS_AUTH_SECRET_ARN", "REDIS_AUTH_TOKEN",
                "REDIS_CA_CERTS", "REDIS_TLS", "SECRET_KEY_SECRET_ARN", "SECRET_KEY_FALLBACKS",
                *(f"DATABASE_{kind}_{part}" for kind in ("MASTER", "RUNTIME", "BACKUP", "DRILL")
                  for part in ("USER", "PASSWORD")))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Every test starts from an environment without the application's variables."""
    for key in APP_ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("APP_ENV", "testing")


@pytest.fixture
def app():
    """The testing app on in-memory SQLite, tables created; its test clients send a valid API token."""
    from webapp import create_app, tokens
    from webapp.database import db

    app = create_app("testing")
    with app.app_context():
        db.create_all(bind_key=None)
        app.test_client_class = token_client(tokens.create("tests"))
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis_up(redis_server):
    """Redis running and empty (a test that stopped it gets it back)."""
    if redis_server.process is None:
        redis_server.start()
    import redis

    redis.Redis(port=redis_server.port, password=redis_server.password).flushall()
    return redis_server


@pytest.fixture(scope="module")
def database(postgres, request):
    """A database for this test module, migrated with `flask db upgrade` (the real migrations)."""
    primary, replica = postgres
    name = "test_" + request.module.__name__.rsplit(".", 1)[-1]
    primary.create_database(name)
    env = {"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(primary.port), "DATABASE_NAME": name,
           "DATABASE_USER": "postgres", "DATABASE_PASSWORD": primary.password}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setenv("APP_ENV", "testing")
        from flask_migrate import upgrade
        from webapp import create_app

        with create_app("testing").app_context():
            upgrade()
    replica.wait_for_replay(primary.wal_position())
    return name


@pytest.fixture
def pg_env(monkeypatch, postgres, database, redis_up):
    """Environment for an app on the real servers: primary, replica, Redis."""
    primary, replica = postgres
    env = {"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(primary.port), "DATABASE_NAME": database,
           "DATABASE_USER": "postgres", "DATABASE_PASSWORD": primary.password,
           "DATABASE_REPLICA_HOSTS": f"127.0.0.1:{replica.port}", "REDIS_URL": redis_up.url()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from apiflask import APIFlask
    from webapp.tokens import PREFIX, digest

    token = PREFIX + secrets.token_urlsafe(32)  # the only valid token; every app's test clients send it
    with primary.connect(database) as connection:
        connection.execute("TRUNCATE notes, api_tokens, idempotency_keys RESTART IDENTITY")
        connection.execute("INSERT INTO api_tokens (name, token_hash, created_at) VALUES ('tests', %s, now())",
                           (digest(token),))
    replica.wait_for_replay(primary.wal_position())
    monkeypatch.setattr(APIFlask, "test_client_class", token_client(token))
    return {**env, "token": token}


def token_client(token: str):
    """A test client class that sends `token` (a test of what happens without one builds a FlaskClient itself)."""
    from flask.testing import FlaskClient

    class TokenClient(FlaskClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    return TokenClient


@pytest.fixture
def pg_app(pg_env):
    from webapp import create_app
    from webapp.cache import cache
    from webapp.database import replica_health

    replica_health._down_until.clear()
    cache._down_until = 0.0
    app = create_app("testing")
    yield app
    from webapp.database import db

    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
