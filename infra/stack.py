"""Composes the components for one environment and returns what the next layer needs."""

from __future__ import annotations

import os
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra import sizing
from infra.components import AwsContext
from infra.components.backup_jobs import BackupJobs, scheduled_jobs
from infra.components.backup_plan import BackupPlan
from infra.components.cache import Cache
from infra.components.database import Database
from infra.components.image import AppImage
from infra.components.load_balancer import SERVICE_PRINCIPAL_ONLY_REGIONS, LoadBalancer
from infra.components.monitoring import DEPLOYMENT_ALARMS, Monitoring, Watched
from infra.components.network import Network
from infra.components.secrets import Secrets
from infra.components.service import SERVICE_NAME, AppWiring, ContainerService
from infra.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def build(settings: Settings) -> dict[str, pulumi.Input]:
    """Declare every resource of the stack; return its exports (name -> value)."""
    # One explicit provider: the region and the default tags (Project, Stack, Environment, ManagedBy, user tags)
    # every taggable resource carries. Everything below is parented to components that use it.
    provider = aws.Provider("aws", region=settings.region, default_tags={"tags": settings.default_tags})
    opts = pulumi.ResourceOptions(providers=[provider])
    context = _context(provider)
    prefix = settings.name_prefix
    log_days = settings.logs.retention_days

    secrets = Secrets("secrets", settings.secrets, context=context, name_prefix=prefix,
                      database_username=settings.database.username, protect=settings.protect, opts=opts)
    network = Network("network", settings.network, context=context, name_prefix=prefix,
                      kms_key_arn=secrets.key.arn, log_retention_days=log_days, opts=opts)
    data_tier = dict(name_prefix=prefix, vpc_id=network.vpc_id, subnet_ids=network.isolated_subnet_ids,
                     client_security_group_id=network.app_security_group.id, kms_key_arn=secrets.key.arn,
                     log_retention_days=log_days, protect=settings.protect, opts=opts)
    database = Database("database", settings.database, zones=network.zones,
                        password=secrets.database_password_value, **data_tier)
    cache = Cache("cache", settings.cache, auth_token=secrets.redis_auth_token_value, **data_tier)
    backup_plan = None
    if settings.backup_plan.enabled:
        backup_plan = BackupPlan("backup", settings.backup_plan, context=context, name_prefix=prefix,
                   resource_arns=[database.primary.arn], kms_key_arn=secrets.key.arn, protect=settings.protect,
                   key_deletion_window_days=settings.secrets.key_deletion_window_days, opts=opts)

    # The serving path: internet -> ALB -> Fargate tasks -> PostgreSQL / Redis.
    image = AppImage("image", settings.image, name_prefix=prefix, kms_key_arn=secrets.key.arn,
                     context_dir=ROOT / "app", context_path=os.path.relpath(ROOT / "app"),
                     force_delete=not settings.protect, opts=opts)
    load_balancer = LoadBalancer("load-balancer", settings.load_balancer, context=context, name_prefix=prefix,
                                 vpc_id=network.vpc_id, subnet_ids=network.public_subnet_ids,
                                 app_security_group_id=network.app_security_group.id, app_port=settings.service.port,
                                 log_retention_days=log_days, protect=settings.protect, opts=opts)
    cpu_architecture = "ARM64" if settings.image.platform == "linux/arm64" else "X86_64"
    wiring = AppWiring(
        app_env=settings.service.app_env, image_uri=image.image_uri, repository_arn=image.repository.arn,
        database_host=database.address, database_port=database.port, database_name=settings.database.db_name,
        database_user=settings.database.username, database_replica_hosts=database.replica_addresses,
        redis_host=cache.primary_endpoint, redis_port=cache.port, secret_key_arn=secrets.secret_key.arn,
        database_credentials_arn=secrets.database_credentials.arn,
        redis_auth_token_arn=secrets.redis_auth_token.arn, kms_key_arn=secrets.key.arn)
    # Monitoring comes before the service: ECS checks that its deployment alarms exist. The alarms name the
    # cluster and service by the names the service component gives them.
    db = settings.database
    classes = [db.instance_class] + ([db.replica_instance_class or db.instance_class] if db.replicas else [])
    monitoring = Monitoring(
        "monitoring", settings.monitoring, Watched(
            lb_arn_suffix=load_balancer.arn_suffix, target_group_arn_suffix=load_balancer.target_group.arn_suffix,
            cluster_name=prefix, service_name=SERVICE_NAME, min_tasks=settings.service.min_tasks,
            database_ids=[database.primary.identifier, *(r.identifier for r in database.replicas)],
            replica_ids=[r.identifier for r in database.replicas], allocated_storage_gib=db.allocated_storage,
            max_connections=min(sizing.max_connections(c) for c in classes),
            cache_node_ids=[f"{prefix}-redis-{i + 1:03d}" for i in range(settings.cache.nodes)],
            backup_vaults=[v.name for v in (backup_plan.vault, backup_plan.copy_vault) if v] if backup_plan else [],
            backup_task_families=[f"{prefix}-{job}" for job in scheduled_jobs(settings.backups)]
            if settings.backups.enabled else []),
        context=context, name_prefix=prefix, kms_key_arn=secrets.key.arn,
        cluster_arn=context.arn("ecs", f"cluster/{prefix}"), opts=opts)
    service = ContainerService(
        "service", settings.service, settings.load_balancer, wiring=wiring, context=context, name_prefix=prefix,
        cpu_architecture=cpu_architecture,
        subnet_ids=network.private_subnet_ids, app_security_group_id=network.app_security_group.id,
        lb_security_group_id=load_balancer.security_group.id, target_group=load_balancer.target_group,
        lb_arn_suffix=load_balancer.arn_suffix, listeners=load_balancer.listeners, log_retention_days=log_days,
        deployment_alarms=[monitoring.alarms[concern] for concern in DEPLOYMENT_ALARMS], opts=opts)
    if settings.backups.enabled:
        backups = BackupJobs(
            "backups", settings.backups, settings.service, wiring=wiring, context=context, name_prefix=prefix,
            cluster_arn=service.cluster.arn, execution_role=service.execution_role, log_group=service.log_group,
            cpu_architecture=cpu_architecture, subnet_ids=network.private_subnet_ids,
            security_group_id=network.app_security_group.id, protect=settings.protect,
            key_deletion_window_days=settings.secrets.key_deletion_window_days, opts=opts)

    exports = {
        "url": load_balancer.url,
        "clusterName": service.cluster_name,
        "serviceName": service.service_name,
        "logGroupName": service.log_group_name,
        "ecrRepositoryUrl": image.repository_url,
        "imageUri": image.image_uri,
        "region": settings.region,
        "vpcId": network.vpc_id,
        "availabilityZones": network.zones,
        "publicSubnetIds": network.public_subnet_ids,
        "privateSubnetIds": network.private_subnet_ids,
        "isolatedSubnetIds": network.isolated_subnet_ids,
        "appSecurityGroupId": network.app_security_group.id,
        "kmsKeyArn": secrets.key.arn,
        "databaseAddress": database.address,
        "databasePort": database.port,
        "databaseName": settings.database.db_name,
        "databaseReplicaAddresses": database.replica_addresses,
        "databaseCredentialsSecretArn": secrets.database_credentials.arn,
        "redisPrimaryEndpoint": cache.primary_endpoint,
        "redisReaderEndpoint": cache.reader_endpoint,
        "redisPort": cache.port,
        "redisAuthTokenSecretArn": secrets.redis_auth_token.arn,
        "secretKeySecretArn": secrets.secret_key.arn,
        # What the operations commands (ops/) look up: post-deploy verification and snapshots.
        "targetGroupArn": load_balancer.target_group.arn,
        "taskDefinitionArn": service.task_definition.arn,
        "databaseIdentifier": database.primary.identifier,
        "databaseReplicaIdentifiers": [replica.identifier for replica in database.replicas],
        "redisReplicationGroupId": cache.replication_group.replication_group_id,
    }
    exports["alarmTopicArn"] = monitoring.topic_arn
    if settings.backups.enabled:
        exports.update(backupBucket=backups.bucket_name, backupKmsKeyArn=backups.key_arn)
    return exports


def _context(provider: aws.Provider) -> AwsContext:
    invoke = pulumi.InvokeOptions(provider=provider)
    partition = aws.get_partition(opts=invoke)
    region = aws.get_region(opts=invoke).region
    # Older regions deliver ALB access logs from a regional ELB account; newer ones only from a service principal.
    elb_account_arn = None if region in SERVICE_PRINCIPAL_ONLY_REGIONS else aws.elb.get_service_account(
        opts=invoke).arn
    return AwsContext(account_id=aws.get_caller_identity(opts=invoke).account_id, partition=partition.partition,
                      region=region, dns_suffix=partition.dns_suffix,
                      elb_account_arn=elb_account_arn)
