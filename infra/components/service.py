"""The ECS Fargate service running Gunicorn/Flask behind the load balancer, autoscaled."""

from __future__ import annotations

import math

import pulumi
import pulumi_aws as aws

from infra.components import AwsContext, policy, task_role_trust, type_token
from infra.components.task import (
    CONTAINER,
    AppWiring,
    execution_role,
    fargate_task_definition,
    injected,
    migration_container,
    migration_secrets,
    read_secrets,
    server_container,
    server_secret_arns,
)
from infra.settings import LoadBalancerSettings, ServiceSettings

SERVICE_NAME = "app"  # the ECS service's name


def cluster_name(name_prefix: str) -> str:
    """The cluster is named after the stack. Monitoring names it before the service exists (ECS checks that a
    service's deployment alarms exist), so the rule lives here, once."""
    return name_prefix


def cluster_arn(context: AwsContext, name_prefix: str) -> str:
    return context.arn("ecs", f"cluster/{cluster_name(name_prefix)}")


def steady_state_timeout_minutes(settings: ServiceSettings, lb: LoadBalancerSettings) -> int:
    """How long `pulumi up` waits for a steady service: one wave of new tasks (start, grace period, enough passing
    health checks), the old ones draining and stopping; three waves' worth, for a rollback after a failed one."""
    wave = (settings.startup_seconds + settings.health_check_grace_period_seconds
            + lb.healthy_threshold * lb.health_check_interval_seconds + lb.deregistration_delay_seconds
            + settings.stop_timeout_seconds)
    return max(10, math.ceil(3 * wave / 60))


class ContainerService(pulumi.ComponentResource):
    """An ECS cluster (Container Insights) and a Fargate service of the Gunicorn/Flask task: private subnets, no
    public IP, reachable only from the load balancer, secrets injected, circuit breaker with rollback, desired
    count owned by target-tracking autoscaling on CPU, memory and requests per target."""

    def __init__(self, name: str, settings: ServiceSettings, lb_settings: LoadBalancerSettings, *,
                 wiring: AppWiring, context: AwsContext, name_prefix: str, cpu_architecture: str,
                 subnet_ids: list[pulumi.Input[str]], app_security_group_id: pulumi.Input[str],
                 lb_security_group_id: pulumi.Input[str], target_group: aws.lb.TargetGroup,
                 lb_arn_suffix: pulumi.Input[str], listeners: list[pulumi.Resource], log_retention_days: int,
                 deployment_alarms: list[aws.cloudwatch.MetricAlarm] = (),
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("service", "ContainerService"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        aws.vpc.SecurityGroupIngressRule(f"{name}-from-alb", security_group_id=app_security_group_id,
                                         ip_protocol="tcp", from_port=settings.port, to_port=settings.port,
                                         referenced_security_group_id=lb_security_group_id,
                                         description="Gunicorn from the load balancer", opts=child)

        self.cluster = aws.ecs.Cluster(f"{name}-cluster", name=cluster_name(name_prefix),
                                       settings=[{"name": "containerInsights", "value": "enabled"}], opts=child)
        capacity = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity", cluster_name=self.cluster.name, capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[{"capacity_provider": "FARGATE", "weight": 1, "base": 1}],
            opts=pulumi.ResourceOptions(parent=self.cluster))
        self.log_group = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/ecs/{name_prefix}/app",
                                                 retention_in_days=log_retention_days,
                                                 kms_key_id=wiring.logs_key_arn, opts=child)

        # ECS injects only the migration step's logins; the server reads its own secrets (task role).
        execution, self.execution_policy = execution_role(
            f"{name}-execution", description=f"{name_prefix}: ECS starts the app tasks", context=context,
            wiring=wiring, log_group_arn=self.log_group.arn, secrets=injected(migration_secrets(wiring)),
            parent=self)
        task_role = aws.iam.Role(f"{name}-task", description=f"{name_prefix}: what the application may call",
                                 assume_role_policy=task_role_trust(context),
                                 opts=child)
        self.task_policies = [aws.iam.RolePolicy(f"{name}-task-secrets", role=task_role.id,
                                                 policy=pulumi.Output.json_dumps(server_secrets_policy(wiring)),
                                                 opts=pulumi.ResourceOptions(parent=task_role))]
        if settings.ecs_exec:
            self.task_policies.append(aws.iam.RolePolicy(f"{name}-task-exec", role=task_role.id,
                                                         policy=pulumi.Output.json_dumps(ecs_exec_policy()),
                                                         opts=pulumi.ResourceOptions(parent=task_role)))

        logs = dict(log_group=self.log_group.name, region=context.region)
        self.task_definition = fargate_task_definition(
            f"{name}-task", family=f"{name_prefix}-app", cpu=settings.cpu, memory=settings.memory,
            cpu_architecture=cpu_architecture, execution_role=execution, task_role=task_role,
            containers=[migration_container(settings, wiring, **logs), server_container(settings, wiring, **logs)],
            opts=child)

        strategies = [{"capacity_provider": "FARGATE", "weight": 1, "base": 1}]
        if settings.spot_weight:
            strategies.append({"capacity_provider": "FARGATE_SPOT", "weight": settings.spot_weight})
        minutes = steady_state_timeout_minutes(settings, lb_settings)
        self.service = aws.ecs.Service(
            f"{name}-service",
            name=SERVICE_NAME,
            cluster=self.cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=settings.min_tasks,
            capacity_provider_strategies=strategies,
            platform_version="LATEST",
            network_configuration={"subnets": subnet_ids, "security_groups": [app_security_group_id],
                                   "assign_public_ip": False},
            load_balancers=[{"target_group_arn": target_group.arn, "container_name": CONTAINER,
                             "container_port": settings.port}],
            health_check_grace_period_seconds=settings.health_check_grace_period_seconds,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            # A deployment that sets off these alarms (5xx rate, p99) is rolled back like one whose tasks fail.
            alarms={"alarm_names": [alarm.name for alarm in deployment_alarms], "enable": True, "rollback": True}
            if deployment_alarms else None,
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            enable_execute_command=settings.ecs_exec,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            wait_for_steady_state=True,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[capacity, self.execution_policy, *self.task_policies, *listeners],
                # After creation the autoscaler owns the desired count; a deploy must not reset it.
                ignore_changes=["desiredCount"],
                custom_timeouts=pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes}m")),
        )

        resource_id = pulumi.Output.concat("service/", self.cluster.name, "/", self.service.name)
        target = aws.appautoscaling.Target(f"{name}-scaling", service_namespace="ecs",
                                           scalable_dimension="ecs:service:DesiredCount", resource_id=resource_id,
                                           min_capacity=settings.min_tasks, max_capacity=settings.max_tasks,
                                           opts=pulumi.ResourceOptions(parent=self.service))
        request_label = pulumi.Output.concat(lb_arn_suffix, "/", target_group.arn_suffix)
        for metric, value, label in (("ECSServiceAverageCPUUtilization", settings.cpu_target, None),
                                     ("ECSServiceAverageMemoryUtilization", settings.memory_target, None),
                                     ("ALBRequestCountPerTarget", settings.requests_per_target, request_label)):
            spec = {"predefined_metric_type": metric}
            if label is not None:
                spec["resource_label"] = label
            aws.appautoscaling.Policy(
                f"{name}-{metric}", policy_type="TargetTrackingScaling", resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension, service_namespace=target.service_namespace,
                target_tracking_scaling_policy_configuration={
                    "target_value": value, "predefined_metric_specification": spec,
                    "scale_in_cooldown": settings.scale_in_cooldown_seconds,
                    "scale_out_cooldown": settings.scale_out_cooldown_seconds},
                opts=pulumi.ResourceOptions(parent=target))

        self.cluster_name = self.cluster.name
        self.service_name = self.service.name
        self.log_group_name = self.log_group.name
        self.register_outputs({"cluster_name": self.cluster_name, "service_name": self.service_name,
                               "log_group_name": self.log_group_name,
                               "task_definition_arn": self.task_definition.arn})


def server_secrets_policy(wiring: AppWiring) -> dict:
    """The application reads its runtime login, the Redis token and the Flask key set, and re-reads them when they
    rotate; no other secret (the master's and the owner's least of all)."""
    return policy(*read_secrets(server_secret_arns(wiring), wiring.secrets_key_arn))


def ecs_exec_policy() -> dict:
    """ECS Exec's SSM channels; these actions take no resource-level permissions."""
    return policy({"Sid": "EcsExecChannels", "Effect": "Allow", "Resource": "*", "Action": [
        "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel"]})
