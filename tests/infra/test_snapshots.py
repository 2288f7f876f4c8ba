"""Snapshots component (AWS Backup): vault, daily plan, cross-region copy, selection."""

import json

from infra.components.snapshots import Snapshots
from infra.offline import harness
from tests.infra.conftest import CONTEXT, KEY_ARN, settings_for

DB_ARN = f"arn:aws:rds:eu-west-1:{harness.ACCOUNT}:db:flask-aws-prod-db"


def build(tier="prod", **plan) -> harness.Run:
    s = settings_for(tier, snapshots={"enabled": True, **plan})
    return harness.run(lambda: Snapshots("backup", s.snapshots, context=CONTEXT, name_prefix=f"flask-aws-{tier}",
                                          resource_arns=[DB_ARN], kms_key_arn=KEY_ARN, protect=s.protect,
                                          key_deletion_window_days=30))


def test_vault_is_encrypted_with_the_stack_key_and_protected():
    vault = build().named("backup-vault")
    assert vault.inputs["kmsKeyArn"] == KEY_ARN and vault.protect


def test_daily_rule_with_tier_retention_and_a_copy_in_the_second_region():
    run = build()
    (rule,) = run.one("aws:backup/plan:Plan").inputs["rules"]
    assert rule["schedule"] == "cron(0 7 ? * * *)"
    assert rule["lifecycle"]["deleteAfter"] == 35
    copy_vault = run.named("backup-copy-vault")
    assert copy_vault.inputs["region"] == "eu-central-1"
    assert rule["copyActions"] == [{"destinationVaultArn": copy_vault.outputs["arn"],
                                    "lifecycle": {"deleteAfter": 35}}]
    assert ":eu-central-1:" in copy_vault.outputs["arn"]
    copy_key = run.named("backup-copy-key")
    assert copy_key.inputs["region"] == "eu-central-1" and copy_key.inputs["enableKeyRotation"] is True
    assert copy_vault.inputs["kmsKeyArn"] == copy_key.outputs["arn"]


def test_no_copy_without_a_copy_region():
    run = build("staging")
    (rule,) = run.one("aws:backup/plan:Plan").inputs["rules"]
    assert not rule.get("copyActions")
    assert len(run.of_type("aws:backup/vault:Vault")) == 1


def test_selection_covers_the_database_through_the_backup_role():
    run = build()
    selection = run.one("aws:backup/selection:Selection")
    assert selection.inputs["resources"] == [DB_ARN]
    role = run.one("aws:iam/role:Role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "backup.amazonaws.com"}
    assert selection.inputs["iamRoleArn"] == role.outputs["arn"]
    assert sorted(a.inputs["policyArn"].rsplit("/", 1)[1] for a in run.of_type(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment")) == ["AWSBackupServiceRolePolicyForBackup",
                                                                  "AWSBackupServiceRolePolicyForRestores"]
