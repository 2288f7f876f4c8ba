"""Secrets component: the generated secrets; the database logins' secrets (DatabaseLogins). The keys are
tests/infra/test_keys.py's."""

import json

from infra.components.logins import DatabaseLogins
from infra.components.secrets import PULUMI_LABEL, REDIS_AUTH_SPECIALS, Secrets
from infra.offline import harness
from tests.infra.conftest import SECRETS_KEY_ARN as KEY_ARN
from tests.infra.conftest import settings_for


def build(tier="staging", protect=True, **secrets) -> harness.Run:
    s = settings_for(tier, secrets=secrets)
    return harness.run(lambda: Secrets("secrets", s.secrets, name_prefix="flask-aws-test", kms_key_arn=KEY_ARN,
                                       protect=protect))


def build_logins(tier="prod") -> harness.Run:
    s = settings_for(tier)
    return harness.run(lambda: DatabaseLogins(
        "database-logins", s.database, s.secrets, name_prefix="flask-aws-test", kms_key_arn=KEY_ARN,
        host="db.example.internal", port=5432, master_password="master-password-1", protect=True))


def test_each_secret_is_encrypted_with_the_secrets_key_and_has_the_tier_recovery_window():
    for tier, window in (("dev", 0), ("staging", 7), ("prod", 30)):
        run = build(tier)
        secrets = run.of_type("aws:secretsmanager/secret:Secret")
        assert len(secrets) == 2
        assert all(s.inputs["kmsKeyId"] == KEY_ARN for s in secrets)
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
    assert len(versions) == 2
    generated = [r.outputs["result"] for r in run.of_type("random:index/randomPassword:RandomPassword")]
    for version in versions:
        assert version.redacted["secretString"] == harness.SECRET
    printed = json.dumps(run.as_json())
    assert not any(value in printed for value in generated)


def test_the_flask_key_set_starts_with_a_current_and_a_next_key():
    run = build()
    keys = json.loads(run.named("secrets-flask-secret-key-value").inputs["secretString"])
    assert set(keys) == {"current", "next", "previous"} and keys["previous"] == ""
    assert len(keys["current"]) == len(keys["next"]) == 64 and keys["current"] != keys["next"]


def test_a_deploy_never_writes_a_rotated_value_back():
    """Rotation moves AWSCURRENT on; the version Pulumi wrote keeps a label of its own so Secrets Manager never
    deletes it (Pulumi would write it again as AWSCURRENT), and its value is never compared again."""
    for run in (build(), build_logins()):
        for version in run.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
            assert version.inputs["versionStages"] == ["AWSCURRENT", PULUMI_LABEL]
            assert set(version.ignore_changes) == {"secretString", "versionStages"}


def test_every_secret_says_how_it_rotates():
    tags = {r.name: r.inputs["tags"]["Rotation"] for r in build().of_type("aws:secretsmanager/secret:Secret")}
    assert tags == {"secrets-flask-secret-key": "scheduled", "secrets-redis-auth-token": "runbook"}


def test_each_database_login_has_its_own_secret_shaped_for_the_rotation_functions():
    run = build_logins()
    values = {r.name.removesuffix("-value").removeprefix("database-logins-"): json.loads(r.inputs["secretString"])
              for r in run.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    assert set(values) == {"master", "owner", "runtime", "backup", "drill"}
    users = {kind: value["username"] for kind, value in values.items()}
    assert users == {"master": "app_admin", "owner": "app_owner", "runtime": "app_runtime", "backup": "app_backup",
                     "drill": "app_drill"}
    for value in values.values():
        assert {k: value[k] for k in ("engine", "host", "port", "dbname")} == \
            {"engine": "postgres", "host": "db.example.internal", "port": 5432, "dbname": "app"}
    assert values["master"]["password"] == "master-password-1"
    assert len({value["password"] for value in values.values()}) == 5
    # The multi-user scheme (the runtime login) names the secret allowed to change it: the master's.
    master = run.named("database-logins-master", "aws:secretsmanager/secret:Secret").outputs["arn"]
    assert values["runtime"]["masterarn"] == master and all("masterarn" not in v for k, v in values.items()
                                                            if k != "runtime")
    secrets = run.of_type("aws:secretsmanager/secret:Secret")
    assert all(s.inputs["kmsKeyId"] == KEY_ARN and s.protect and s.inputs["tags"]["Rotation"] == "scheduled"
               for s in secrets)
    assert sorted(s.inputs["tags"]["DatabaseLogin"] for s in secrets) == ["backup", "drill", "master", "owner",
                                                                          "runtime"]
    assert all(v.redacted["secretString"] == harness.SECRET
               for v in run.of_type("aws:secretsmanager/secretVersion:SecretVersion"))


def test_dev_does_not_protect():
    run = build("dev", protect=False)
    assert not any(r.protect for r in run.resources)
