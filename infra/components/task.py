"""The application's ECS tasks: the contract between the infrastructure and the image (environment and secrets),
the container definitions of the server and of the jobs that run the same image, and the Fargate task definition.

Shared by the service (Gunicorn behind the load balancer) and the backup jobs (`flask backup ...` on a schedule),
so the two cannot drift apart: same image, same variables, same secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.settings import ServiceSettings

CONTAINER = "app"
PROXY_COUNT = 1  # the ALB is the one proxy in front of Gunicorn
JOB_STOP_TIMEOUT = 120  # a job gets ECS's longest wait after SIGTERM to finish what it is writing


@dataclass(frozen=True)
class AppWiring:
    """What the application needs from the rest of the stack (the infrastructure/application contract)."""

    app_env: str
    image_uri: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    database_host: pulumi.Input[str]
    database_port: pulumi.Input[int]
    database_name: str
    database_user: str
    database_replica_hosts: list[pulumi.Input[str]]
    redis_host: pulumi.Input[str]
    redis_port: pulumi.Input[int]
    secret_key_arn: pulumi.Input[str]
    database_credentials_arn: pulumi.Input[str]
    redis_auth_token_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]


def environment(settings: ServiceSettings, wiring: AppWiring, region: str) -> dict[str, pulumi.Input[str]]:
    """Plain environment variables of the container (never a secret: those go through `secrets`)."""
    return {
        "APP_ENV": wiring.app_env,
        "PORT": str(settings.port),
        "WEB_CONCURRENCY": str(settings.workers),
        "GUNICORN_THREADS": str(settings.threads),
        "GUNICORN_KEEPALIVE": str(settings.keepalive_seconds),
        "GUNICORN_TIMEOUT": str(settings.timeout_seconds),
        "GUNICORN_GRACEFUL_TIMEOUT": str(settings.graceful_timeout_seconds),
        "PROXY_COUNT": str(PROXY_COUNT),
        # Only the load balancer's group reaches the tasks, so Gunicorn may trust whatever forwards to it.
        "FORWARDED_ALLOW_IPS": "*",
        "DATABASE_HOST": wiring.database_host,
        "DATABASE_SSLMODE": "require",  # rds.force_ssl=1
        "DATABASE_PORT": pulumi.Output.from_input(wiring.database_port).apply(str),
        "DATABASE_NAME": wiring.database_name,
        "DATABASE_USER": wiring.database_user,
        "DATABASE_REPLICA_HOSTS": pulumi.Output.all(*wiring.database_replica_hosts).apply(",".join),
        "DB_POOL_SIZE": str(settings.db_pool_size),
        "DB_MAX_OVERFLOW": str(settings.db_max_overflow),
        "REDIS_HOST": wiring.redis_host,
        "REDIS_PORT": pulumi.Output.from_input(wiring.redis_port).apply(str),
        "REDIS_TLS": "true",
        "RUN_MIGRATIONS": "true" if settings.run_migrations else "false",
        "LOG_LEVEL": settings.log_level,
        "AWS_REGION": region,
    }


def secrets(wiring: AppWiring) -> dict[str, tuple[pulumi.Input[str], str | None]]:
    """Variables ECS reads from Secrets Manager at task start and injects: name -> (secret ARN, JSON key or None
    for the whole secret)."""
    return {
        "SECRET_KEY": (wiring.secret_key_arn, None),
        "DATABASE_PASSWORD": (wiring.database_credentials_arn, "password"),
        "REDIS_AUTH_TOKEN": (wiring.redis_auth_token_arn, None),
    }


def secret_arns(wiring: AppWiring) -> list[pulumi.Input[str]]:
    """The secrets the task's execution role must read."""
    return [arn for arn, _ in secrets(wiring).values()]


def server_container(settings: ServiceSettings, wiring: AppWiring, *, log_group: pulumi.Input[str],
                     region: str) -> dict:
    """The container serving HTTP: the image's entrypoint starts Gunicorn on the port."""
    probe = (f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{settings.port}/health', "
             "timeout=4)")
    return {
        "name": CONTAINER,
        "image": wiring.image_uri,
        "essential": True,
        "portMappings": [{"containerPort": settings.port, "protocol": "tcp", "name": "http"}],
        **_contract(settings, wiring, region),
        # Non-blocking: a slow log stream must never stall a request.
        "logConfiguration": _logs(log_group, region, CONTAINER, {"mode": "non-blocking", "max-buffer-size": "25m"}),
        "healthCheck": {"command": ["CMD", "python", "-c", probe], "interval": 15, "timeout": 5, "retries": 3,
                        "startPeriod": settings.startup_seconds},
        "stopTimeout": settings.stop_timeout_seconds,
        # ECS Exec's agent writes into the container, which a read-only root filesystem forbids.
        **_filesystem(read_only=not settings.ecs_exec),
    }


def job_container(command: list[str], settings: ServiceSettings, wiring: AppWiring, *,
                  extra_environment: dict[str, pulumi.Input[str]], log_group: pulumi.Input[str], stream_prefix: str,
                  region: str) -> dict:
    """The same image running `command` instead of Gunicorn, with the same variables and secrets plus
    `extra_environment`; no port, no health check, a read-only root filesystem."""
    return {
        "name": CONTAINER,
        "image": wiring.image_uri,
        "essential": True,
        "command": command,
        **_contract(settings, wiring, region, extra_environment),
        "logConfiguration": _logs(log_group, region, stream_prefix),
        **_filesystem(read_only=True),
        "stopTimeout": JOB_STOP_TIMEOUT,
    }


def _contract(settings: ServiceSettings, wiring: AppWiring, region: str,
              extra_environment: dict[str, pulumi.Input[str]] | None = None) -> dict:
    env = {**environment(settings, wiring, region), **(extra_environment or {})}
    return {
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "secrets": [{"name": k, "valueFrom": pulumi.Output.concat(arn, f":{key}::") if key else arn}
                    for k, (arn, key) in sorted(secrets(wiring).items())],
    }


def _logs(log_group: pulumi.Input[str], region: str, stream_prefix: str, extra: dict | None = None) -> dict:
    return {"logDriver": "awslogs", "options": {"awslogs-group": log_group, "awslogs-region": region,
                                                "awslogs-stream-prefix": stream_prefix, **(extra or {})}}


def _filesystem(read_only: bool) -> dict:
    """The root filesystem, an ephemeral /tmp (the task's `tmp` volume) and an init process for signals."""
    return {
        "readonlyRootFilesystem": read_only,
        "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}],
        "linuxParameters": {"initProcessEnabled": True},
    }


def fargate_task_definition(resource_name: str, *, family: str, cpu: int, memory: int, cpu_architecture: str,
                            execution_role: aws.iam.Role, task_role: aws.iam.Role, container: dict,
                            opts: pulumi.ResourceOptions, **extra) -> aws.ecs.TaskDefinition:
    """A Fargate task of one container with an ephemeral /tmp volume (the root filesystem is read-only)."""
    return aws.ecs.TaskDefinition(
        resource_name,
        family=family,
        cpu=str(cpu),
        memory=str(memory),
        network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": cpu_architecture},
        execution_role_arn=execution_role.arn,
        task_role_arn=task_role.arn,
        volumes=[{"name": "tmp"}],
        container_definitions=pulumi.Output.json_dumps([container]),
        opts=opts,
        **extra,
    )
