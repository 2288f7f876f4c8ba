"""Credentials read from Secrets Manager (moto) through AWS's caching client: the Redis AUTH token taken again at
reconnect after a rotation, the Flask key set rotating without breaking signed values, and a secret that cannot be
read or has the wrong shape refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webapp import credentials

from tests.strategies import hostile_text, json_values

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_store():
    """Each test starts with a process whose secrets cache is empty."""
    credentials._stores.clear()
    yield
    credentials._stores.clear()


def secret(name: str, value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return boto3.client("secretsmanager").create_secret(Name=name, SecretString=text)["ARN"]


def test_the_region_comes_from_the_contracts_aws_region(aws, monkeypatch):
    """The contract names the region in AWS_REGION; botocore alone reads only AWS_DEFAULT_REGION (which ECS adds, a
    container run elsewhere may not): NoRegionError."""
    arn = secret("region-check", "value")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert credentials.SecretStore(60).text(arn) == "value"


def test_unreadable_or_misshapen_secrets_are_one_clear_line(aws):
    store = credentials.store()
    with pytest.raises(credentials.CredentialsError, match="cannot read secret no-such-secret: "
                       "ResourceNotFoundException. Check the task role may secretsmanager:GetSecretValue"):
        store.text("no-such-secret")
    with pytest.raises(credentials.CredentialsError, match="is not JSON"):
        store.json(secret("plain", "not json"), "username")
    with pytest.raises(credentials.CredentialsError, match="has no password"):
        credentials.DatabaseLogin(secret("half", {"username": "u"})).current()


def test_the_redis_token_is_taken_again_at_reconnect_after_a_rotation(aws, redis_server, monkeypatch):
    """ElastiCache's token rotation ends with only the new token valid (SET): connections made after it must use
    it. The application re-reads the secret when Redis refuses the old token, and serves uncached meanwhile."""
    import redis

    arn = secret("redis-token", redis_server.password)
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    monkeypatch.setenv("REDIS_AUTH_SECRET_ARN", arn)
    from webapp import create_app
    from webapp.cache import cache

    app = create_app("testing")
    admin = redis.Redis(port=redis_server.port, password=redis_server.password)
    try:
        with app.app_context():
            cache._down_until = 0.0
            cache.set("rotation:key", {"v": 1})
            assert cache.get("rotation:key") == '{"v":1}'
            boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="rotated-token-2")
            admin.config_set("requirepass", "rotated-token-2")
            admin = redis.Redis(port=redis_server.port, password="rotated-token-2")
            admin.client_kill_filter(_type="normal", skipme=True)  # ElastiCache closes nothing; a restart would
            assert cache.get("rotation:key") is None  # refused: uncached, no error, the secret re-read
            cache._down_until = 0.0  # the 5 s pause over
            assert cache.get("rotation:key") == '{"v":1}'
    finally:
        admin.config_set("requirepass", redis_server.password)


def test_the_signing_key_rotates_without_breaking_signed_values(aws, monkeypatch):
    """The key set moves next -> current -> previous: a value signed before a rotation, or by a process that
    rotated earlier than this one, is accepted on both sides of it."""
    keys = {"previous": "", "current": "k1" * 24, "next": "k2" * 24}
    arn = secret("flask-key", keys)
    monkeypatch.setenv("SECRET_KEY_SECRET_ARN", arn)
    from webapp import create_app

    app = create_app("testing")
    sessions = app.session_interface
    before = sessions.get_signing_serializer(app).dumps({"user": 1})
    assert app.config["SECRET_KEY"] == keys["current"]  # CSRF signs with the current key too

    rotated = {"previous": keys["current"], "current": keys["next"], "next": "k3" * 24}
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps(rotated))
    # A process that has re-read the secret (its cache interval passed) signs with the new key ...
    credentials._stores.clear()
    serializer = sessions.get_signing_serializer(app)
    after = serializer.dumps({"user": 2})
    assert app.config["SECRET_KEY"] == rotated["current"]
    assert app.config["SECRET_KEY_FALLBACKS"] == [rotated["next"], rotated["previous"]]
    # ... still accepts what it signed before, and what a process still on the old set signs now is accepted,
    # because that process accepts the new key already (it was its `next`).
    assert serializer.loads(before) == {"user": 1}
    from itsdangerous import URLSafeTimedSerializer

    # Flask's order: the accepted keys, then the signing key last.
    old_process = URLSafeTimedSerializer([keys["next"], keys["current"]], salt=sessions.salt,
                                         serializer=sessions.serializer,
                                         signer_kwargs={"key_derivation": sessions.key_derivation,
                                                        "digest_method": sessions.digest_method})
    assert old_process.loads(after) == {"user": 2}


def preflight(env: dict) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "app"), "APP_ENV": "production",
            "DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:1/app"}
    return subprocess.run([sys.executable, "-m", "webapp.preflight", "--serve"], env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_serving_refuses_an_unreadable_or_weak_key_from_the_secret_in_one_line(aws):
    moto = aws.environment()
    done = preflight({**moto, "SECRET_KEY_SECRET_ARN": "missing-key"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "cannot read secret missing-key: ResourceNotFoundException" in done.stderr
    done = preflight({**moto, "SECRET_KEY_SECRET_ARN": secret("weak", {"current": "short"})})
    assert done.returncode == 2 and "the current key of SECRET_KEY_SECRET_ARN has 5 characters" in done.stderr
    done = preflight({**moto, "SECRET_KEY_SECRET_ARN": secret("strong", {"current": "k" * 48})})
    assert done.returncode == 0, done.stderr
    # The jobs (no --serve) sign nothing and get no key at all.
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "app"), "APP_ENV": "production",
            "DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:1/app"}
    assert subprocess.run([sys.executable, "-m", "webapp.preflight"], env=base, capture_output=True,
                          timeout=60).returncode == 0


# Hostile secret values (tests/strategies.py): whatever text a secret holds, a login or key set is text, or the
# process stops with one line naming the secret. Each example writes a new secret to moto.
SECRET_TEXT = st.one_of(
    st.fixed_dictionaries({}, optional={key: json_values(2) for key in
                                        ("username", "password", "current", "next", "previous")}).map(json.dumps),
    json_values().map(json.dumps), hostile_text()).filter(lambda text: 0 < len(text.encode()) <= 65536)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=SECRET_TEXT)
def test_any_secret_value_gives_text_or_one_clear_line(aws, text):
    arn = boto3.client("secretsmanager").create_secret(Name="fuzz-" + uuid.uuid4().hex, SecretString=text)["ARN"]
    for read in (credentials.DatabaseLogin(arn).current, lambda: (credentials.SigningKeys(arn).current()[0],
                                                                  *credentials.SigningKeys(arn).current()[1])):
        try:
            values = read()
        except credentials.CredentialsError as err:
            assert arn in str(err) and "\n" not in str(err), str(err)
        else:
            assert values and all(isinstance(v, str) and v for v in values), values
