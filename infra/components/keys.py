"""The stack's KMS keys, one per data class, each with an explicit key policy: the account administers it through
IAM, and uses it only through the AWS services that hold that class of data.

    data     the database (storage, Performance Insights, snapshots in the vault), the cache, the image repository
    logs     every log group (CloudWatch Logs, for the stack's own groups only) and the alarm topic
    secrets  every Secrets Manager secret

A key per class bounds what one key policy mistake, one over-broad IAM grant or one deleted key can reach: the
secrets key opens no database snapshot, the logs key no secret. The backup dumps in S3 have their own key too
(BackupJobs), and the snapshot copies a key in their region (Snapshots).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.components import AwsContext, policy, type_token
from infra.settings import SecretsSettings

# Managing a key, not using it. No Create* (no CreateGrant); an administrator can still rewrite the key policy
# (PutKeyPolicy) to give themselves its use: key administration is a privileged role, kept to few principals.
ADMIN_ACTIONS = ["kms:Describe*", "kms:Get*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Enable*", "kms:Disable*",
                 "kms:Delete*", "kms:CreateAlias", "kms:Revoke*", "kms:TagResource", "kms:UntagResource",
                 "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"]
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
GRANT_ACTIONS = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
# The services each class of data is used through (kms:ViaService <service>.<region>.amazonaws.com). ElastiCache
# asks KMS through two service names.
DATA_SERVICES = ("rds", "elasticache", "dax", "backup", "ecr")
LOGS_SERVICES = ("logs", "sns")  # reading the log groups; publishing to (and SNS delivering from) the alarm topic
SECRETS_SERVICES = ("secretsmanager",)


def log_group_patterns(name_prefix: str) -> list[str]:
    """The stack's log groups, by the names their components give them (a test holds every log group to these)."""
    return [f"/vpc/{name_prefix}/*", f"/ecs/{name_prefix}/*", f"/aws/rds/instance/{name_prefix}-db/*",
            f"/aws/rds/instance/{name_prefix}-db-replica-*", f"/aws/elasticache/{name_prefix}/*",
            f"/aws/lambda/{name_prefix}-rotate-*", f"aws-waf-logs-{name_prefix}"]


def key_policy(context: AwsContext, services: tuple[str, ...], *, region: str | None = None, grants: bool = False,
               extra: tuple[dict, ...] = ()) -> dict:
    """Administration and use as separate statements, both delegated to the account's IAM policies: use only
    through `services` in `region` (the stack's by default), and grants only for AWS resources of those services."""
    via = [f"{service}.{region or context.region}.{context.dns_suffix}" for service in services]
    statements = [
        {"Sid": "AccountAdministersTheKeyThroughIam", "Effect": "Allow", "Principal": {"AWS": context.root_principal},
         "Action": ADMIN_ACTIONS, "Resource": "*"},
        {"Sid": "AccountUsesTheKeyThroughItsServices", "Effect": "Allow",
         "Principal": {"AWS": context.root_principal}, "Action": USE_ACTIONS, "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": via}}},
    ]
    if grants:
        statements.append({"Sid": "ServicesHoldGrantsForTheirResources", "Effect": "Allow",
                           "Principal": {"AWS": context.root_principal}, "Action": GRANT_ACTIONS, "Resource": "*",
                           "Condition": {"StringEquals": {"kms:ViaService": via},
                                         "Bool": {"kms:GrantIsForAWSResource": "true"}}})
    return policy(*statements, *extra)


def data_key_policy(context: AwsContext, name_prefix: str) -> dict:
    """The data key, which was the stack's only key: a stack deployed before the split still holds secret versions
    and log events it encrypted. Secrets Manager and CloudWatch Logs may still decrypt with it (only decrypt, and
    only the stack's log groups): Secrets Manager to re-encrypt the secrets with the secrets key when a deploy moves
    them, and to read the versions it keeps; CloudWatch Logs to read events written before, for their retention. A
    stack created since has nothing of theirs under this key."""
    return key_policy(context, DATA_SERVICES, grants=True, extra=(
        {"Sid": "SecretsManagerDecryptsWhatTheFirstKeyEncrypted", "Effect": "Allow",
         "Principal": {"AWS": context.root_principal}, "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": [
             f"secretsmanager.{context.region}.{context.dns_suffix}"]}}},
        {"Sid": "CloudWatchLogsDecryptsWhatTheFirstKeyEncrypted", "Effect": "Allow",
         "Principal": {"Service": f"logs.{context.region}.{context.dns_suffix}"},
         "Action": ["kms:Decrypt*", "kms:Describe*"], "Resource": "*",
         "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_group_arns(context, name_prefix)}}},
    ))


def log_group_arns(context: AwsContext, name_prefix: str) -> list[str]:
    return [context.arn("logs", f"log-group:{pattern}") for pattern in log_group_patterns(name_prefix)]


def logs_key_policy(context: AwsContext, name_prefix: str) -> dict:
    """CloudWatch Logs encrypts the stack's log groups, and only those; CloudWatch alarms and EventBridge publish to
    the encrypted alarm topic (EventBridge's delivery to an encrypted topic takes no source condition)."""
    groups = log_group_arns(context, name_prefix)
    return key_policy(context, LOGS_SERVICES, extra=(
        {"Sid": "CloudWatchLogsEncryptsTheStacksLogGroups", "Effect": "Allow",
         "Principal": {"Service": f"logs.{context.region}.{context.dns_suffix}"},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
         "Resource": "*", "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": groups}}},
        {"Sid": "AlarmsPublishToTheEncryptedTopic", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
         "Resource": "*", "Condition": {"StringEquals": {"aws:SourceAccount": context.account_id}}},
        {"Sid": "EventsPublishToTheEncryptedTopic", "Effect": "Allow",
         "Principal": {"Service": "events.amazonaws.com"}, "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
         "Resource": "*"},
    ))


class StackKeys(pulumi.ComponentResource):
    """The data, logs and secrets keys (rotating yearly), each with an alias."""

    def __init__(self, name: str, settings: SecretsSettings, *, context: AwsContext, name_prefix: str,
                 protect: bool, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("keys", "StackKeys"), name, None, opts)
        # The data key is the stack's first key, which the Secrets component used to own: the aliases keep its URN, so
        # the database and the cache, whose key cannot change in place, keep theirs.
        first = pulumi.create_urn("secrets", type_token("secrets", "Secrets"))
        self.data = self._key(name, "data", settings, protect, alias_name=name_prefix,
                              description=f"{name_prefix}: encrypts the database, its snapshots, the cache and images",
                              policy=data_key_policy(context, name_prefix),
                              aliases=("secrets-key", "secrets-key-alias", first))
        self.logs = self._key(name, "logs", settings, protect, alias_name=f"{name_prefix}-logs",
                              description=f"{name_prefix}: encrypts the log groups and the alarm topic",
                              policy=logs_key_policy(context, name_prefix))
        self.secrets = self._key(name, "secrets", settings, protect, alias_name=f"{name_prefix}-secrets",
                                 description=f"{name_prefix}: encrypts the secrets",
                                 policy=key_policy(context, SECRETS_SERVICES))
        self.register_outputs({"data": self.data.arn, "logs": self.logs.arn, "secrets": self.secrets.arn})

    def _key(self, name: str, label: str, settings: SecretsSettings, protect: bool, *, alias_name: str,
             description: str, policy: dict, aliases: tuple = ()) -> aws.kms.Key:
        key_aliases = [pulumi.Alias(name=aliases[0], parent=aliases[2])] if aliases else []
        key = aws.kms.Key(f"{name}-{label}", description=description, enable_key_rotation=True,
                          deletion_window_in_days=settings.key_deletion_window_days, policy=json.dumps(policy),
                          opts=pulumi.ResourceOptions(parent=self, protect=protect, aliases=key_aliases))
        alias_aliases = [pulumi.Alias(name=aliases[1], parent=aliases[2])] if aliases else []
        aws.kms.Alias(f"{name}-{label}-alias", name=f"alias/{alias_name}", target_key_id=key.key_id,
                      opts=pulumi.ResourceOptions(parent=self, aliases=alias_aliases))
        return key
