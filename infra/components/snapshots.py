"""AWS Backup snapshots of the database (the `snapshots` settings): a vault, a daily plan, and a copy in a second
region when asked."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.components import AwsContext, assume_role_policy, type_token
from infra.components.keys import key_policy
from infra.settings import SnapshotSettings

# The copies are made and kept by AWS Backup and RDS in the copy region.
COPY_SERVICES = ("rds", "backup")
BACKUP_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
)


class Snapshots(pulumi.ComponentResource):
    """Snapshots independent of RDS's own automated backups: they live in a vault encrypted with the data key,
    outlive the instance, and (for prod) are copied to a vault in another region, re-encrypted with a key there.

    The type token keeps its first name (`backup:BackupPlan`): it is part of the URN of every resource below, and
    a new one would replace the vaults."""

    def __init__(self, name: str, settings: SnapshotSettings, *, context: AwsContext, name_prefix: str,
                 resource_arns: list[pulumi.Input[str]], kms_key_arn: pulumi.Input[str], protect: bool,
                 key_deletion_window_days: int, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("backup", "BackupPlan"), name, None, opts)
        stateful = pulumi.ResourceOptions(parent=self, protect=protect)

        self.vault = aws.backup.Vault(f"{name}-vault", name=f"{name_prefix}-vault", kms_key_arn=kms_key_arn,
                                      opts=stateful)
        copy_actions = []
        self.copy_vault = None
        if settings.copy_region:
            copy_key = aws.kms.Key(
                f"{name}-copy-key", region=settings.copy_region,
                description=f"{name_prefix}: encrypts the copies of database snapshots in {settings.copy_region}",
                enable_key_rotation=True, deletion_window_in_days=key_deletion_window_days,
                policy=json.dumps(key_policy(context, COPY_SERVICES, region=settings.copy_region, grants=True)),
                opts=stateful)
            aws.kms.Alias(f"{name}-copy-key-alias", region=settings.copy_region, name=f"alias/{name_prefix}-backup",
                          target_key_id=copy_key.key_id, opts=pulumi.ResourceOptions(parent=copy_key))
            self.copy_vault = aws.backup.Vault(f"{name}-copy-vault", region=settings.copy_region,
                                               name=f"{name_prefix}-vault", kms_key_arn=copy_key.arn, opts=stateful)
            copy_actions.append({"destination_vault_arn": self.copy_vault.arn,
                                 "lifecycle": {"delete_after": settings.retention_days}})

        role = aws.iam.Role(f"{name}-role", description=f"{name_prefix}: AWS Backup takes and restores snapshots",
                            assume_role_policy=assume_role_policy("backup.amazonaws.com", context),
                            opts=pulumi.ResourceOptions(parent=self))
        for i, arn in enumerate(BACKUP_POLICIES):
            aws.iam.RolePolicyAttachment(f"{name}-role-{i + 1}", role=role.name, policy_arn=arn,
                                         opts=pulumi.ResourceOptions(parent=role))

        self.plan = aws.backup.Plan(
            f"{name}-plan",
            name=f"{name_prefix}-database",
            rules=[{
                "rule_name": "daily",
                "target_vault_name": self.vault.name,
                "schedule": settings.schedule,
                "start_window": 60,
                "completion_window": 360,
                "lifecycle": {"delete_after": settings.retention_days},
                "copy_actions": copy_actions,
            }],
            opts=pulumi.ResourceOptions(parent=self))
        aws.backup.Selection(f"{name}-selection", name=f"{name_prefix}-database", plan_id=self.plan.id,
                             iam_role_arn=role.arn, resources=resource_arns,
                             opts=pulumi.ResourceOptions(parent=self.plan))

        # Vault Lock: no snapshot leaves a vault before its retention, whoever asks (governance: short of removing the
        # lock; compliance: once lockChangeableDays are over, not at all), and no job may keep one outside the bounds.
        vaults = [(f"{name}-vault", self.vault, None)]
        if self.copy_vault is not None:
            vaults.append((f"{name}-copy-vault", self.copy_vault, settings.copy_region))
        for label, vault, region in vaults:
            aws.backup.VaultLockConfiguration(
                f"{label}-lock", backup_vault_name=vault.name, region=region,
                min_retention_days=settings.lock_min_retention_days,
                max_retention_days=settings.lock_max_retention_days,
                changeable_for_days=settings.lock_changeable_days if settings.lock_mode == "compliance" else None,
                opts=pulumi.ResourceOptions(parent=vault, protect=protect))

        # AWS Backup reports failed jobs by vault name: monitoring watches these.
        self.vault_names = [v.name for v in (self.vault, self.copy_vault) if v]
        self.register_outputs({
            "vault_arn": self.vault.arn,
            "copy_vault_arn": self.copy_vault.arn if self.copy_vault else None,
            "plan_id": self.plan.id,
        })
