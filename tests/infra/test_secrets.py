"""Secrets component: the stack key and the generated secrets."""

import json

from infra.components.secrets import REDIS_AUTH_SPECIALS, Secrets
from infra.offline import harness
from tests.infra.conftest import CONTEXT, settings_for


def build(tier="staging", protect=True, **secrets) -> harness.Run:
    s = settings_for(tier, secrets=secrets)
    return harness.run(lambda: Secrets("secrets", s.secrets, context=CONTEXT, name_prefix="flask-aws-test",
                                       database_username="app_admin", protect=protect))


def test_key_rotates_and_is_protected():
    run = build()
    key = run.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30
    assert key.protect
    assert run.one("aws:kms/alias:Alias").inputs["name"] == "alias/flask-aws-test"


def test_key_policy_keeps_the_account_in_control_and_lets_logs_use_it_for_this_account_only():
    statements = json.loads(build().one("aws:kms/key:Key").inputs["policy"])["Statement"]
    admin, logs, topic = statements
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{harness.ACCOUNT}:root"}
    # The alarm topic is encrypted with this key: CloudWatch alarms and EventBridge may use it, this account's only.
    assert topic["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert topic["Condition"] == {"StringEquals": {"aws:SourceAccount": harness.ACCOUNT}}
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == \
        f"arn:aws:logs:eu-west-1:{harness.ACCOUNT}:log-group:*"
    assert "kms:*" not in logs["Action"]


def test_each_secret_is_encrypted_with_the_stack_key_and_has_the_tier_recovery_window():
    for tier, window in (("dev", 0), ("staging", 7), ("prod", 30)):
        run = build(tier)
        key_arn = run.one("aws:kms/key:Key").outputs["arn"]
        secrets = run.of_type("aws:secretsmanager/secret:Secret")
        assert len(secrets) == 3
        assert all(s.inputs["kmsKeyId"] == key_arn for s in secrets)
        assert all(s.inputs["recoveryWindowInDays"] == window for s in secrets)


def test_redis_token_fits_elasticache_rules():
    run = build()
    token = next(r for r in run.of_type("random:index/randomPassword:RandomPassword") if "redis" in r.name)
    assert 16 <= token.inputs["length"] <= 128
    assert token.inputs["overrideSpecial"] == REDIS_AUTH_SPECIALS
    allowed = set(REDIS_AUTH_SPECIALS) | set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    assert set(token.outputs["result"]) <= allowed
    assert not set(token.outputs["result"]) & set('/"@ ')


def test_secret_values_are_secret_and_never_printed():
    run = build()
    versions = run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert len(versions) == 3
    generated = [r.outputs["result"] for r in run.of_type("random:index/randomPassword:RandomPassword")]
    for version in versions:
        assert version.redacted["secretString"] == harness.SECRET
    printed = json.dumps(run.as_json())
    assert not any(value in printed for value in generated)


def test_database_credentials_hold_username_and_password_as_json():
    run = build()
    version = run.named("secrets-database-credentials-value")
    password = run.named("secrets-database-password").outputs["result"]
    assert json.loads(version.inputs["secretString"]) == {"username": "app_admin", "password": password}


def test_dev_does_not_protect():
    run = build("dev", protect=False)
    assert not any(r.protect for r in run.resources)
