"""Composes the components for one environment: the foundation (provider, key and secrets, network), the data
tier, the serving path, and the exports the next layer needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra import sizing
from infra.components import AwsContext, type_token
from infra.components.backup_jobs import BackupJobs, task_families
from infra.components.cache import Cache
from infra.components.database import Database
from infra.components.firewall import WebFirewall, web_acl_name
from infra.components.image import AppImage
from infra.components.keys import StackKeys
from infra.components.load_balancer import SERVICE_PRINCIPAL_ONLY_REGIONS, LoadBalancer
from infra.components.logins import DatabaseLogins
from infra.components.monitoring import Monitoring, Watched
from infra.components.network import Network
from infra.components.rotation import CredentialRotation, function_names, rotated_secrets
from infra.components.secrets import Secrets
from infra.components.service import SERVICE_NAME, ContainerService, cluster_arn, cluster_name
from infra.components.snapshots import Snapshots
from infra.components.task import AppWiring
from infra.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Foundation:
    opts: pulumi.ResourceOptions  # the stack's one AWS provider
    context: AwsContext
    keys: StackKeys
    secrets: Secrets
    network: Network


@dataclass(frozen=True)
class DataTier:
    database: Database
    logins: DatabaseLogins
    cache: Cache
    snapshots: Snapshots | None


@dataclass(frozen=True)
class ServingPath:
    image: AppImage
    load_balancer: LoadBalancer
    firewall: WebFirewall | None
    monitoring: Monitoring
    service: ContainerService
    rotation: CredentialRotation
    backups: BackupJobs | None


def build(settings: Settings) -> dict[str, pulumi.Input]:
    """Declare every resource of the stack; return its exports (name -> value)."""
    base = foundation(settings)
    data = data_tier(settings, base)
    serving = serving_path(settings, base, data)
    return exports(settings, base, data, serving)


def foundation(s: Settings) -> Foundation:
    # One explicit provider: the region and the default tags (Project, Stack, Environment, ManagedBy, user tags)
    # every taggable resource carries. Everything below is parented to components that use it.
    provider = aws.Provider("aws", region=s.region, default_tags={"tags": s.default_tags})
    opts = pulumi.ResourceOptions(providers=[provider])
    context = _context(provider)
    keys = StackKeys("keys", s.secrets, context=context, name_prefix=s.name_prefix, protect=s.protect, opts=opts)
    secrets = Secrets("secrets", s.secrets, name_prefix=s.name_prefix, kms_key_arn=keys.secrets.arn,
                      protect=s.protect, opts=opts)
    network = Network("network", s.network, context=context, name_prefix=s.name_prefix, logs_key_arn=keys.logs.arn,
                      log_retention_days=s.logs.retention_days, opts=opts)
    return Foundation(opts, context, keys, secrets, network)


def data_tier(s: Settings, base: Foundation) -> DataTier:
    """PostgreSQL and Redis in the isolated subnets, reachable only from the application's security group
    (PostgreSQL from the backup jobs' and the rotation functions' too); a login per role."""
    network, secrets, keys = base.network, base.secrets, base.keys
    shared = dict(name_prefix=s.name_prefix, vpc_id=network.vpc_id, subnet_ids=network.isolated_subnet_ids,
                  kms_key_arn=keys.data.arn, logs_key_arn=keys.logs.arn, log_retention_days=s.logs.retention_days,
                  protect=s.protect, opts=base.opts)
    app = ("the application", network.app_security_group.id)
    database = Database("database", s.database, context=base.context, zones=network.zones,
                        password=secrets.database_password_value,
                        clients={"app": app, "jobs": ("the backup and drill tasks", network.jobs_security_group.id),
                                 "rotation": ("the credential rotation functions",
                                              network.rotation_security_group.id)},
                        # The rotation functions' egress to the database was the rotation's own rule: same rule, moved.
                        moved_egress={"rotation": pulumi.Alias(name="rotation-to-database", parent=pulumi.create_urn(
                            "rotation", type_token("secrets", "CredentialRotation")))}, **shared)
    logins = DatabaseLogins("database-logins", s.database, s.secrets, name_prefix=s.name_prefix,
                            kms_key_arn=keys.secrets.arn, host=database.address, port=database.port,
                            master_password=secrets.database_password_value, protect=s.protect, opts=base.opts)
    cache = Cache("cache", s.cache, auth_token=secrets.redis_auth_token_value, clients={"app": app}, **shared)
    snapshots = Snapshots("backup", s.snapshots, context=base.context, name_prefix=s.name_prefix,
                          resource_arns=[database.primary.arn], kms_key_arn=keys.data.arn, protect=s.protect,
                          key_deletion_window_days=s.secrets.key_deletion_window_days,
                          opts=base.opts) if s.snapshots.enabled else None
    return DataTier(database, logins, cache, snapshots)


def serving_path(s: Settings, base: Foundation, data: DataTier) -> ServingPath:
    """Internet -> ALB -> Fargate tasks -> PostgreSQL / Redis, the alarms on it, the jobs in the same image, and the
    rotation of the logins once the service's migration step has made the roles."""
    prefix, network, secrets, keys, opts = s.name_prefix, base.network, base.secrets, base.keys, base.opts
    image = AppImage("image", s.image, name_prefix=prefix, kms_key_arn=keys.data.arn, context_dir=ROOT / "app",
                     context_path=os.path.relpath(ROOT / "app"), force_delete=not s.protect, opts=opts)
    load_balancer = LoadBalancer("load-balancer", s.load_balancer, context=base.context, name_prefix=prefix,
                                 vpc_id=network.vpc_id, subnet_ids=network.public_subnet_ids,
                                 app_security_group_id=network.app_security_group.id, app_port=s.service.port,
                                 log_retention_days=s.logs.retention_days, protect=s.protect, opts=opts)
    firewall = WebFirewall(
        "firewall", s.firewall, context=base.context, name_prefix=prefix, load_balancer_arn=load_balancer.alb.arn,
        max_body_bytes=s.service.max_body_bytes, logs_key_arn=keys.logs.arn,
        log_retention_days=s.logs.retention_days, opts=opts) if s.firewall.mode != "off" else None
    wiring = AppWiring(
        app_env=s.service.app_env, image_uri=image.image_uri, repository_arn=image.repository.arn,
        database_host=data.database.address, database_port=data.database.port, database_name=s.database.db_name,
        database_ssl_mode=s.database.ssl_mode, database_replica_hosts=data.database.replica_addresses,
        logins=data.logins.logins, redis_host=data.cache.primary_endpoint, redis_port=data.cache.port,
        secret_key_arn=secrets.secret_key.arn, redis_auth_token_arn=secrets.redis_auth_token.arn,
        secrets_key_arn=keys.secrets.arn, logs_key_arn=keys.logs.arn)
    # Monitoring comes before the service: ECS checks that its deployment alarms exist. The alarms name the
    # cluster, the service and the backup jobs by the names their components give them.
    monitoring = Monitoring(
        "monitoring", s.monitoring, Watched(
            lb_arn_suffix=load_balancer.arn_suffix, target_group_arn_suffix=load_balancer.target_group.arn_suffix,
            cluster_name=cluster_name(prefix), service_name=SERVICE_NAME, min_tasks=s.service.min_tasks,
            database_ids=data.database.identifiers, replica_ids=data.database.replica_identifiers,
            allocated_storage_gib=s.database.allocated_storage,
            max_connections=min(sizing.max_connections(c) for c in data.database.instance_classes),
            cache_node_ids=data.cache.node_ids, backup_vaults=data.snapshots.vault_names if data.snapshots else [],
            backup_task_families=task_families(prefix, s.backups),
            rotated_secrets=rotated_secrets(data.logins.logins, secrets.secret_key.arn),
            rotation_functions=function_names(prefix),
            web_acl_name=web_acl_name(prefix) if firewall else None, region=base.context.region),
        context=base.context, name_prefix=prefix, logs_key_arn=keys.logs.arn,
        cluster_arn=cluster_arn(base.context, prefix), opts=opts)
    service = ContainerService(
        "service", s.service, s.load_balancer, wiring=wiring, context=base.context, name_prefix=prefix,
        cpu_architecture=s.image.cpu_architecture, subnet_ids=network.private_subnet_ids,
        app_security_group_id=network.app_security_group.id, lb_security_group_id=load_balancer.security_group.id,
        target_group=load_balancer.target_group, lb_arn_suffix=load_balancer.arn_suffix,
        listeners=load_balancer.listeners, log_retention_days=s.logs.retention_days,
        deployment_alarms=monitoring.deployment_alarms, opts=opts)
    backups = BackupJobs(
        "backups", s.backups, s.service, wiring=wiring, context=base.context, name_prefix=prefix,
        cluster_arn=service.cluster.arn, log_group=service.log_group,
        cpu_architecture=s.image.cpu_architecture, subnet_ids=network.private_subnet_ids,
        security_group_id=network.jobs_security_group.id, protect=s.protect,
        key_deletion_window_days=s.secrets.key_deletion_window_days, log_retention_days=s.logs.retention_days,
        opts=opts) if s.backups.enabled else None
    rotation = CredentialRotation(
        "rotation", s.secrets, context=base.context, name_prefix=prefix, logins=data.logins.logins,
        secret_key_arn=secrets.secret_key.arn, kms_key_arn=keys.secrets.arn, logs_key_arn=keys.logs.arn,
        subnet_ids=network.private_subnet_ids,
        security_group_id=network.rotation_security_group.id, log_retention_days=s.logs.retention_days,
        roles_exist=[service.service], opts=opts)
    network.allow_buckets([backups.bucket.arn] if backups else [])
    return ServingPath(image, load_balancer, firewall, monitoring, service, rotation, backups)


def exports(s: Settings, base: Foundation, data: DataTier, serving: ServingPath) -> dict[str, pulumi.Input]:
    network, secrets, database, cache = base.network, base.secrets, data.database, data.cache
    return {
        "url": serving.load_balancer.url,
        "clusterName": serving.service.cluster_name,
        "serviceName": serving.service.service_name,
        "logGroupName": serving.service.log_group_name,
        "ecrRepositoryUrl": serving.image.repository_url,
        "imageUri": serving.image.image_uri,
        "region": s.region,
        "vpcId": network.vpc_id,
        "availabilityZones": network.zones,
        "publicSubnetIds": network.public_subnet_ids,
        "privateSubnetIds": network.private_subnet_ids,
        "isolatedSubnetIds": network.isolated_subnet_ids,
        "appSecurityGroupId": network.app_security_group.id,
        "kmsKeyArns": {"data": base.keys.data.arn, "logs": base.keys.logs.arn, "secrets": base.keys.secrets.arn},
        "databaseAddress": database.address,
        "databasePort": database.port,
        "databaseName": s.database.db_name,
        "databaseReplicaAddresses": database.replica_addresses,
        "databaseLoginSecretArns": {kind: login.secret_arn for kind, login in data.logins.logins.items()},
        "redisPrimaryEndpoint": cache.primary_endpoint,
        "redisReaderEndpoint": cache.reader_endpoint,
        "redisPort": cache.port,
        "redisAuthTokenSecretArn": secrets.redis_auth_token.arn,
        "secretKeySecretArn": secrets.secret_key.arn,
        # What the operations commands (ops/) look up: post-deploy verification and snapshots.
        "targetGroupArn": serving.load_balancer.target_group.arn,
        "taskDefinitionArn": serving.service.task_definition.arn,
        "databaseIdentifier": database.primary.identifier,
        "databaseReplicaIdentifiers": database.replica_identifiers,
        "redisReplicationGroupId": cache.replication_group.replication_group_id,
        "alarmTopicArn": serving.monitoring.topic_arn,
        **({"backupBucket": serving.backups.bucket_name, "backupKmsKeyArn": serving.backups.key_arn}
           if serving.backups else {}),
    }


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
