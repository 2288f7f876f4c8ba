"""StackKeys: a key per data class, each with an explicit policy (administration apart from use, use through the
services that hold the data), log encryption for the stack's own log groups, and the first key's URN kept."""

from __future__ import annotations

import fnmatch
import json

import pytest

from infra.components.keys import ADMIN_ACTIONS, USE_ACTIONS, StackKeys, log_group_patterns
from infra.offline import harness
from tests.infra.conftest import CONTEXT, STACKS, settings_for

ROOT = f"arn:aws:iam::{harness.ACCOUNT}:root"


def build(tier="prod") -> harness.Run:
    s = settings_for(tier)
    return harness.run(lambda: StackKeys("keys", s.secrets, context=CONTEXT, name_prefix=f"flask-aws-{tier}",
                                         protect=s.protect))


def statements(run, label: str) -> dict[str, dict]:
    document = json.loads(run.named(f"keys-{label}", "aws:kms/key:Key").inputs["policy"])
    return {st["Sid"]: st for st in document["Statement"]}


def test_three_rotating_protected_keys_with_aliases():
    run = build()
    for label, alias in (("data", "alias/flask-aws-prod"), ("logs", "alias/flask-aws-prod-logs"),
                         ("secrets", "alias/flask-aws-prod-secrets")):
        key = run.named(f"keys-{label}", "aws:kms/key:Key")
        assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30 and key.protect
        assert run.named(f"keys-{label}-alias", "aws:kms/alias:Alias").inputs["name"] == alias


@pytest.mark.parametrize("label, services", [
    ("data", ["rds", "elasticache", "dax", "backup", "ecr"]), ("logs", ["logs", "sns"]),
    ("secrets", ["secretsmanager"])])
def test_the_account_administers_each_key_and_uses_it_only_through_its_services(label, services):
    by_sid = statements(build(), label)
    admin, use = by_sid["AccountAdministersTheKeyThroughIam"], by_sid["AccountUsesTheKeyThroughItsServices"]
    assert admin["Principal"] == use["Principal"] == {"AWS": ROOT}
    assert admin["Action"] == ADMIN_ACTIONS and not any(a.startswith(("kms:Encrypt", "kms:Decrypt", "kms:Create*",
                                                                      "kms:CreateGrant")) for a in ADMIN_ACTIONS)
    assert use["Action"] == USE_ACTIONS and "Condition" in use
    assert use["Condition"] == {"StringEquals": {"kms:ViaService": [f"{s}.eu-west-1.amazonaws.com"
                                                                    for s in services]}}
    grants = by_sid.get("ServicesHoldGrantsForTheirResources")
    # RDS, ElastiCache, AWS Backup and ECR keep grants on the data key for their resources; nothing else does.
    assert (grants is not None) is (label == "data")
    if grants:
        assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_cloudwatch_logs_encrypts_the_stacks_log_groups_only():
    logs = statements(build(), "logs")["CloudWatchLogsEncryptsTheStacksLogGroups"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    groups = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    prefix = f"arn:aws:logs:eu-west-1:{harness.ACCOUNT}:log-group:"
    assert groups == [prefix + pattern for pattern in log_group_patterns("flask-aws-prod")]
    assert not any(g.endswith("log-group:*") for g in groups)


@pytest.mark.parametrize("stack", STACKS)
def test_every_log_group_of_a_stack_is_one_the_logs_key_names(stacks, stack):
    """A log group a component adds under a new name would be left without its key's grant: caught here."""
    run = stacks[stack]
    patterns = log_group_patterns(f"flask-aws-{stack}")
    for group in run.of_type("aws:cloudwatch/logGroup:LogGroup"):
        name = group.inputs["name"]
        assert any(fnmatch.fnmatchcase(name, p) for p in patterns), name
        assert group.inputs["kmsKeyId"] == run.named("keys-logs", "aws:kms/key:Key").outputs["arn"], name


def test_other_stacks_log_groups_are_not_matched():
    """prod's patterns do not take in a stack named prod-eu's groups (one account, two stacks)."""
    patterns = log_group_patterns("flask-aws-prod")
    for name in ("/ecs/flask-aws-prod-eu/app", "/aws/rds/instance/flask-aws-prod-eu-db/postgresql",
                 "/aws/lambda/flask-aws-prod-eu-rotate-single", "aws-waf-logs-flask-aws-prod-eu"):
        assert not any(fnmatch.fnmatchcase(name, p) for p in patterns), name


def test_what_the_first_key_encrypted_stays_readable_through_secrets_manager_and_logs_only():
    """A stack deployed before the split holds secret versions and log events under the data key: Secrets Manager
    (to re-encrypt them with the secrets key, and read them) and CloudWatch Logs (the stack's groups) may decrypt
    with it; nothing else, and nothing but decrypt."""
    by_sid = statements(build(), "data")
    secrets = by_sid["SecretsManagerDecryptsWhatTheFirstKeyEncrypted"]
    assert secrets["Action"] == "kms:Decrypt" and secrets["Principal"] == {"AWS": ROOT}
    assert secrets["Condition"] == {"StringEquals": {"kms:ViaService": ["secretsmanager.eu-west-1.amazonaws.com"]}}
    logs = by_sid["CloudWatchLogsDecryptsWhatTheFirstKeyEncrypted"]
    assert logs["Action"] == ["kms:Decrypt*", "kms:Describe*"]
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == statements(build(), "logs")[
        "CloudWatchLogsEncryptsTheStacksLogGroups"]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]


def test_the_rotation_functions_egress_to_the_database_moved_not_made_anew(stacks):
    """EC2 refuses the same rule twice: the rule the rotation declared is the database's now, under its old URN."""
    rule = stacks["prod"].named("database-to-rotation", "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert rule.aliases == ["urn:pulumi:prod::flask-aws::flask-aws:secrets:CredentialRotation$"
                            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule::rotation-to-database"]


def test_the_data_key_keeps_the_first_keys_urn(stacks):
    """The stack's first key (Secrets' `secrets-key`) is the data key now: the database and the cache cannot change
    their key in place, so the move must not replace it."""
    run = stacks["prod"]
    key = run.named("keys-data", "aws:kms/key:Key")
    assert key.aliases == ["urn:pulumi:prod::flask-aws::flask-aws:secrets:Secrets$aws:kms/key:Key::secrets-key"]
    alias = run.named("keys-data-alias", "aws:kms/alias:Alias")
    assert alias.aliases == ["urn:pulumi:prod::flask-aws::flask-aws:secrets:Secrets$aws:kms/alias:Alias::"
                             "secrets-key-alias"]
    assert run.named("database-primary", "aws:rds/instance:Instance").inputs["kmsKeyId"] == key.outputs["arn"]
