"""ElastiCache Redis: a replication group in the isolated subnets, encrypted at rest and in transit, AUTH on."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.components import reachable_only_from, type_token
from infra.settings import CacheSettings

PORT = 6379


class Cache(pulumi.ComponentResource):
    """A Redis primary and `nodes - 1` replicas (automatic failover and Multi-AZ by setting), reachable on 6379
    only from its clients' security groups, TLS with an AUTH token, slow log to CloudWatch."""

    def __init__(self, name: str, settings: CacheSettings, *, name_prefix: str, vpc_id: pulumi.Input[str],
                 subnet_ids: list[pulumi.Input[str]], clients: dict[str, tuple[str, pulumi.Input[str]]],
                 kms_key_arn: pulumi.Input[str], logs_key_arn: pulumi.Input[str], auth_token: pulumi.Input[str],
                 log_retention_days: int,
                 protect: bool, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("cache", "Cache"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        subnet_group = aws.elasticache.SubnetGroup(f"{name}-subnets", subnet_ids=subnet_ids,
                                                   description=f"{name_prefix}: isolated subnets", opts=child)
        self.security_group = reachable_only_from(f"{name}-sg", vpc_id=vpc_id, port=PORT,
                                                  sources=clients,
                                                  service="Redis", tag_name=f"{name_prefix}-redis", parent=self)
        major = settings.engine_version.split(".")[0]
        # The application uses Redis as a cache: under memory pressure evict the least recently used key of any.
        parameter_group = aws.elasticache.ParameterGroup(
            f"{name}-params", family=f"redis{major}", description=f"{name_prefix}: cache eviction",
            parameters=[{"name": "maxmemory-policy", "value": "allkeys-lru"}], opts=child)
        slow_log = aws.cloudwatch.LogGroup(f"{name}-slow-log", name=f"/aws/elasticache/{name_prefix}/slow-log",
                                           retention_in_days=log_retention_days, kms_key_id=logs_key_arn, opts=child)

        group_id = f"{name_prefix}-redis"
        self.replication_group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            replication_group_id=group_id,
            description=f"{name_prefix}: application cache",
            engine="redis",
            engine_version=settings.engine_version,
            node_type=settings.node_type,
            num_cache_clusters=settings.nodes,
            automatic_failover_enabled=settings.automatic_failover,
            multi_az_enabled=settings.multi_az,
            port=PORT,
            subnet_group_name=subnet_group.name,
            security_group_ids=[self.security_group.id],
            parameter_group_name=parameter_group.name,
            at_rest_encryption_enabled=True,
            kms_key_id=kms_key_arn,
            transit_encryption_enabled=True,
            auth_token=auth_token,
            snapshot_retention_limit=settings.snapshot_retention_days,
            snapshot_window=settings.snapshot_window,
            maintenance_window=settings.maintenance_window,
            auto_minor_version_upgrade=True,
            apply_immediately=settings.apply_immediately,
            log_delivery_configurations=[{
                "destination": slow_log.name,
                "destination_type": "cloudwatch-logs",
                "log_format": "json",
                "log_type": "slow-log",
            }],
            # The first token only: the rotation runbook (docs/operations.md) changes it with ROTATE and SET, and a
            # deploy must not set the first one back.
            opts=pulumi.ResourceOptions(parent=self, protect=protect, ignore_changes=["authToken"]),
        )

        # ElastiCache names a group's nodes <group>-001, -002, ...: monitoring needs them by name, when declared.
        self.node_ids = [f"{group_id}-{i + 1:03d}" for i in range(settings.nodes)]
        self.primary_endpoint = self.replication_group.primary_endpoint_address
        self.reader_endpoint = self.replication_group.reader_endpoint_address
        self.port = self.replication_group.port
        self.register_outputs({
            "primary_endpoint": self.primary_endpoint,
            "reader_endpoint": self.reader_endpoint,
            "port": self.port,
            "security_group_id": self.security_group.id,
        })
