"""Fixtures for the infrastructure tests: each stack run once per session, settings for component tests."""

import pytest

from infra import settings
from infra.components import AwsContext
from infra.components.logins import SCHEMES, Login
from infra.components.task import AppWiring
from infra.offline import harness

STACKS = ("dev", "staging", "prod")
CONTEXT = AwsContext(account_id=harness.ACCOUNT, partition="aws", region="eu-west-1")
KEY_ARN = f"arn:aws:kms:eu-west-1:{harness.ACCOUNT}:key/11111111-2222-4333-8444-555555555555"  # the data key
LOGS_KEY_ARN = f"arn:aws:kms:eu-west-1:{harness.ACCOUNT}:key/22222222-2222-4333-8444-555555555555"
SECRETS_KEY_ARN = f"arn:aws:kms:eu-west-1:{harness.ACCOUNT}:key/33333333-2222-4333-8444-555555555555"


IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flask-aws-prod/app@sha256:" + "c" * 64
REPOSITORY_ARN = f"arn:aws:ecr:eu-west-1:{harness.ACCOUNT}:repository/flask-aws-prod/app"
SECRET_ARNS = {name: f"arn:aws:secretsmanager:eu-west-1:{harness.ACCOUNT}:secret:flask-aws-prod/{name}-AbCdEf"
               for name in ("flask-secret-key", "redis-auth-token", *(f"database-{kind}" for kind in SCHEMES))}
USERS = {"master": "app_admin", "owner": "app_owner", "runtime": "app_runtime", "backup": "app_backup",
         "drill": "app_drill"}


def wiring_for(s: settings.Settings) -> AppWiring:
    """The application's wiring as the stack gives it, with fixed names for what the stack would compute."""
    logins = {kind: Login(kind, USERS[kind], SECRET_ARNS[f"database-{kind}"], scheme)
              for kind, scheme in SCHEMES.items()}
    return AppWiring(
        app_env=s.service.app_env, image_uri=IMAGE, repository_arn=REPOSITORY_ARN,
        database_host="db.example.internal", database_port=5432, database_name="app",
        database_ssl_mode=s.database.ssl_mode, database_replica_hosts=["r1.example.internal", "r2.example.internal"],
        logins=logins, redis_host="redis.example.internal", redis_port=6379,
        secret_key_arn=SECRET_ARNS["flask-secret-key"], redis_auth_token_arn=SECRET_ARNS["redis-auth-token"],
        secrets_key_arn=SECRETS_KEY_ARN, logs_key_arn=LOGS_KEY_ARN)


def settings_for(tier: str, **groups) -> settings.Settings:
    """Valid settings of a tier with some groups' keys overridden, e.g. settings_for("dev", cache={"nodes": 2})."""
    raw = {key: value for key, value in groups.items()}
    if tier == "prod":
        raw.setdefault("snapshots", {}).setdefault("copyRegion", "eu-central-1")
    if tier != "dev":
        raw.setdefault("monitoring", {}).setdefault("alarmEmails", ["ops@example.com"])
    lb = raw.setdefault("loadBalancer", {})
    if tier == "dev":
        lb.setdefault("allowHttp", True)
    else:
        lb.setdefault("domain", f"{tier}.example.com")
        lb.setdefault("hostedZoneId", "Z0123456789EXAMPLE")
    return settings.from_config("flask-aws", tier, "eu-west-1", raw)


@pytest.fixture(scope="session")
def dev_without_backups() -> harness.Run:
    return harness.run_stack("dev", overrides={"backups": {"enabled": False}})


@pytest.fixture
def cached_runs(stacks, monkeypatch):
    """The plan command on the session's stack runs: its own logic tested without running the program again."""
    monkeypatch.setattr(harness, "run_stack", lambda stack, **_: stacks[stack])
