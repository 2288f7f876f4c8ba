"""RDS PostgreSQL: an encrypted primary in the isolated subnets and read replicas spread across AZs."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.components import AwsContext, assume_role_policy, reachable_only_from, type_token
from infra.settings import DatabaseSettings

PORT = 5432
LOG_EXPORTS = ("postgresql", "upgrade")
CA_CERTIFICATE = "rds-ca-rsa2048-g1"
ENHANCED_MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


def parameters(settings: DatabaseSettings) -> list[dict]:
    """TLS required, plus the logging that makes slow queries, lock waits and connection churn visible."""
    return [
        # Static on some versions: pending-reboot works whether the parameter is static or dynamic.
        {"name": "rds.force_ssl", "value": "1", "apply_method": "pending-reboot"},
        {"name": "log_min_duration_statement", "value": str(settings.log_min_duration_ms)},
        {"name": "log_connections", "value": "1"},
        {"name": "log_disconnections", "value": "1"},
        {"name": "log_lock_waits", "value": "1"},
        {"name": "log_temp_files", "value": "10240"},
        {"name": "log_autovacuum_min_duration", "value": "10000"},
    ]


class Database(pulumi.ComponentResource):
    """A PostgreSQL primary (Multi-AZ by setting) and N read replicas, reachable on 5432 only from its clients'
    security groups (label -> (who, group id)), encrypted with the data key, logging to CloudWatch log groups
    with retention."""

    def __init__(self, name: str, settings: DatabaseSettings, *, context: AwsContext, name_prefix: str,
                 vpc_id: pulumi.Input[str],
                 subnet_ids: list[pulumi.Input[str]], zones: list[str],
                 clients: dict[str, tuple[str, pulumi.Input[str]]], kms_key_arn: pulumi.Input[str],
                 logs_key_arn: pulumi.Input[str], moved_egress: dict[str, pulumi.Alias] | None = None,
                 password: pulumi.Input[str], log_retention_days: int, protect: bool,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("database", "Database"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=protect)
        identifier = f"{name_prefix}-db"

        subnet_group = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=subnet_ids,
                                           description=f"{name_prefix}: isolated subnets", opts=child)
        self.security_group = reachable_only_from(f"{name}-sg", vpc_id=vpc_id, port=PORT, service="PostgreSQL",
                                                  tag_name=f"{name_prefix}-db", parent=self, sources=clients,
                                                  moved=moved_egress)
        major = settings.engine_version.split(".")[0]
        parameter_group = aws.rds.ParameterGroup(f"{name}-params", family=f"postgres{major}",
                                                 description=f"{name_prefix}: TLS required, slow-query logging",
                                                 parameters=parameters(settings), opts=child)

        monitoring_role = None
        if settings.monitoring_interval:
            monitoring_role = aws.iam.Role(f"{name}-monitoring",
                                           description=f"{name_prefix}: RDS enhanced monitoring",
                                           assume_role_policy=assume_role_policy(
                                               "monitoring.rds.amazonaws.com", context,
                                               [context.arn("rds", f"db:{identifier}"),
                                                context.arn("rds", f"db:{identifier}-replica-*")]),
                                           opts=child)
            aws.iam.RolePolicyAttachment(f"{name}-monitoring", role=monitoring_role.name,
                                         policy_arn=ENHANCED_MONITORING_POLICY,
                                         opts=pulumi.ResourceOptions(parent=monitoring_role))

        def log_groups(instance_id: str, label: str) -> list[aws.cloudwatch.LogGroup]:
            # RDS would create these itself, unencrypted and kept forever; created first, they get retention and KMS.
            return [aws.cloudwatch.LogGroup(f"{name}-{label}-{export}-logs",
                                            name=f"/aws/rds/instance/{instance_id}/{export}",
                                            retention_in_days=log_retention_days, kms_key_id=logs_key_arn, opts=child)
                    for export in LOG_EXPORTS]

        # Shared by the primary and the replicas.
        common = dict(
            publicly_accessible=False,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=parameter_group.name,
            ca_cert_identifier=CA_CERTIFICATE,
            auto_minor_version_upgrade=True,
            max_allocated_storage=settings.max_allocated_storage,
            deletion_protection=settings.deletion_protection,
            performance_insights_enabled=settings.performance_insights,
            performance_insights_kms_key_id=kms_key_arn if settings.performance_insights else None,
            performance_insights_retention_period=7 if settings.performance_insights else None,
            monitoring_interval=settings.monitoring_interval,
            monitoring_role_arn=monitoring_role.arn if monitoring_role else None,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            copy_tags_to_snapshot=True,
            apply_immediately=settings.apply_immediately,
        )

        # A final snapshot on delete, named uniquely so a second destroy never collides with the first one's.
        final_suffix = random.RandomId(f"{name}-final-snapshot-suffix", byte_length=4, opts=child)
        self.primary = aws.rds.Instance(
            f"{name}-primary",
            identifier=identifier,
            engine="postgres",
            engine_version=settings.engine_version,
            instance_class=settings.instance_class,
            db_name=settings.db_name,
            username=settings.username,
            password=password,
            port=PORT,
            db_subnet_group_name=subnet_group.name,
            multi_az=settings.multi_az,
            storage_type="gp3",
            allocated_storage=settings.allocated_storage,
            storage_encrypted=True,
            kms_key_id=kms_key_arn,
            backup_retention_period=settings.backup_retention_days,
            backup_window=settings.backup_window,
            maintenance_window=settings.maintenance_window,
            skip_final_snapshot=False,
            final_snapshot_identifier=final_suffix.hex.apply(lambda h: f"{identifier}-final-{h}"),
            delete_automated_backups=False,
            **common,
            opts=pulumi.ResourceOptions.merge(stateful, pulumi.ResourceOptions(
                depends_on=log_groups(identifier, "primary"),
                # The password is the first one only: the master login's rotation owns it afterwards, and a deploy
                # must not set it back (which would leave the master secret holding a password RDS no longer has).
                ignore_changes=["password"])),
        )

        # Same-region replicas inherit engine, subnet group and credentials from the source, and state their
        # encryption and key (the source's) rather than leave them to inheritance; they take no final snapshot (RDS
        # does not allow one).
        self.replicas = []
        for i in range(settings.replicas):
            replica_id = f"{identifier}-replica-{i + 1}"
            self.replicas.append(aws.rds.Instance(
                f"{name}-replica-{i + 1}",
                identifier=replica_id,
                replicate_source_db=self.primary.identifier,
                instance_class=settings.replica_class,
                availability_zone=zones[(i + 1) % len(zones)],
                storage_type="gp3",
                storage_encrypted=True,
                kms_key_id=kms_key_arn,
                skip_final_snapshot=True,
                **common,
                opts=pulumi.ResourceOptions.merge(stateful, pulumi.ResourceOptions(
                    depends_on=log_groups(replica_id, f"replica-{i + 1}"))),
            ))

        self.address = self.primary.address
        self.port = self.primary.port
        self.replica_addresses = [r.address for r in self.replicas]
        self.identifiers = [self.primary.identifier, *(r.identifier for r in self.replicas)]
        self.replica_identifiers = [r.identifier for r in self.replicas]
        self.instance_classes = [settings.instance_class] + [settings.replica_class] * settings.replicas
        self.register_outputs({
            "address": self.address,
            "port": self.port,
            "arn": self.primary.arn,
            "replica_addresses": self.replica_addresses,
            "security_group_id": self.security_group.id,
        })
