"""The application's ECS tasks: the contract between the infrastructure and the image (environment and secrets),
the container definitions, and the Fargate task definition.

Every container runs the same image through the same entrypoint, each with the one database login its work needs:
    migrate  (first in the service's task, then exits) the master login for `flask db roles`, the owner's for the
             migrations, and the roles' first passwords, injected by ECS; the server waits for it to succeed
    app      Gunicorn with the runtime login, the Redis token and the Flask key set read from Secrets Manager by the
             application itself (its task role), re-read when they rotate; nothing injected
    backup, drill  (scheduled tasks) their own role's login, injected by ECS
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components import AwsContext, assume_role_policy, policy
from infra.components.logins import Login
from infra.settings import ServiceSettings

CONTAINER = "app"
MIGRATION_CONTAINER = "migrate"
MIGRATION_COMMAND = ["flask", "--app", "webapp", "db", "prepare"]
PROXY_COUNT = 1  # the ALB is the one proxy in front of Gunicorn
JOB_STOP_TIMEOUT = 120  # a job gets ECS's longest wait after SIGTERM to finish what it is writing
RDS_CA_BUNDLE = "/etc/ssl/rds/global-bundle.pem"  # where app/Dockerfile puts AWS's RDS certificate bundle
# The image's own HEALTHCHECK, word for word (a test compares): Python asks /health on the port the contract gives.
HEALTH_PROBE = ("import os, urllib.request; "
                "urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)")


@dataclass(frozen=True)
class AppWiring:
    """What the application needs from the rest of the stack (the infrastructure/application contract)."""

    app_env: str
    image_uri: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    database_host: pulumi.Input[str]
    database_port: pulumi.Input[int]
    database_name: str
    database_ssl_mode: str
    database_replica_hosts: list[pulumi.Input[str]]
    logins: dict[str, Login]  # master, owner, runtime, backup, drill
    redis_host: pulumi.Input[str]
    redis_port: pulumi.Input[int]
    secret_key_arn: pulumi.Input[str]
    redis_auth_token_arn: pulumi.Input[str]
    secrets_key_arn: pulumi.Input[str]  # the KMS key of every secret above
    logs_key_arn: pulumi.Input[str]  # the KMS key of the log groups


Secrets = dict[str, tuple[pulumi.Input[str], str | None]]  # variable -> (secret ARN, JSON key or None: all of it)


def database_environment(settings: ServiceSettings, wiring: AppWiring, region: str) -> dict[str, pulumi.Input[str]]:
    """What every container that connects to the database is told: where it is and how TLS is verified."""
    return {
        "APP_ENV": wiring.app_env,
        "DATABASE_HOST": wiring.database_host,
        "DATABASE_PORT": pulumi.Output.from_input(wiring.database_port).apply(str),
        "DATABASE_NAME": wiring.database_name,
        "DATABASE_SSLMODE": wiring.database_ssl_mode,
        "DATABASE_SSLROOTCERT": RDS_CA_BUNDLE,
        "LOG_LEVEL": settings.log_level,
        "AWS_REGION": region,
    }


def environment(settings: ServiceSettings, wiring: AppWiring, region: str) -> dict[str, pulumi.Input[str]]:
    """The serving container's plain environment (never a secret: an ARN only names one)."""
    return {
        **database_environment(settings, wiring, region),
        "PORT": str(settings.port),
        "WEB_CONCURRENCY": str(settings.workers),
        "GUNICORN_THREADS": str(settings.threads),
        "GUNICORN_KEEPALIVE": str(settings.keepalive_seconds),
        "GUNICORN_TIMEOUT": str(settings.timeout_seconds),
        "GUNICORN_GRACEFUL_TIMEOUT": str(settings.graceful_timeout_seconds),
        "GUNICORN_MAX_REQUESTS": str(settings.max_requests),
        "PROXY_COUNT": str(PROXY_COUNT),
        "MAX_CONTENT_LENGTH": str(settings.max_body_bytes),
        "APP_PUBLIC_READS": "true" if settings.public_reads else "false",
        "RATE_LIMIT_PER_ADDRESS": settings.rate_limit_per_address,
        "RATE_LIMIT_WRITES": settings.rate_limit_writes,
        # Only the load balancer's group reaches the tasks, so Gunicorn may trust whatever forwards to it.
        "FORWARDED_ALLOW_IPS": "*",
        "DATABASE_SECRET_ARN": wiring.logins["runtime"].secret_arn,
        "DATABASE_REPLICA_HOSTS": pulumi.Output.all(*wiring.database_replica_hosts).apply(",".join),
        "DB_POOL_SIZE": str(settings.db_pool_size),
        "DB_MAX_OVERFLOW": str(settings.db_max_overflow),
        "REDIS_HOST": wiring.redis_host,
        "REDIS_PORT": pulumi.Output.from_input(wiring.redis_port).apply(str),
        "REDIS_TLS": "true",
        "REDIS_AUTH_SECRET_ARN": wiring.redis_auth_token_arn,
        "SECRET_KEY_SECRET_ARN": wiring.secret_key_arn,
    }


def server_secret_arns(wiring: AppWiring) -> list[pulumi.Input[str]]:
    """The secrets the serving application reads itself (its task role may, nothing else may)."""
    return [wiring.logins["runtime"].secret_arn, wiring.redis_auth_token_arn, wiring.secret_key_arn]


def login_secrets(login: Login, prefix: str = "DATABASE") -> Secrets:
    return {f"{prefix}_USER": (login.secret_arn, "username"), f"{prefix}_PASSWORD": (login.secret_arn, "password")}


def migration_secrets(wiring: AppWiring) -> Secrets:
    """The migration step: the owner's login (it migrates), the master's (it keeps the roles), and each role's
    password, used only to create a role that does not exist yet."""
    secrets = {**login_secrets(wiring.logins["owner"]), **login_secrets(wiring.logins["master"], "DATABASE_MASTER")}
    for kind in ("runtime", "backup", "drill"):
        secrets[f"DATABASE_{kind.upper()}_PASSWORD"] = (wiring.logins[kind].secret_arn, "password")
    return secrets


def injected(*secrets: Secrets) -> list[pulumi.Input[str]]:
    """The secrets ECS reads to inject these variables (the task's execution role must read them), each once."""
    found: list[pulumi.Input[str]] = []
    for arn in (arn for group in secrets for arn, _ in group.values()):
        if not any(arn is seen for seen in found):
            found.append(arn)
    return found


def server_container(settings: ServiceSettings, wiring: AppWiring, *, log_group: pulumi.Input[str],
                     region: str) -> dict:
    """The container serving HTTP: the image's entrypoint starts Gunicorn on the port, once the migration step
    has succeeded."""
    return {
        "name": CONTAINER,
        "image": wiring.image_uri,
        "essential": True,
        "portMappings": [{"containerPort": settings.port, "protocol": "tcp", "name": "http"}],
        **_contract(environment(settings, wiring, region), {}),
        "dependsOn": [{"containerName": MIGRATION_CONTAINER, "condition": "SUCCESS"}],
        # Non-blocking: a slow log stream must never stall a request.
        "logConfiguration": _logs(log_group, region, CONTAINER, {"mode": "non-blocking", "max-buffer-size": "25m"}),
        "healthCheck": {"command": ["CMD", "python", "-c", HEALTH_PROBE], "interval": 15, "timeout": 5, "retries": 3,
                        "startPeriod": settings.startup_seconds},
        "stopTimeout": settings.stop_timeout_seconds,
        # ECS Exec's agent writes into the container, which a read-only root filesystem forbids.
        **_filesystem(read_only=not settings.ecs_exec),
    }


def migration_container(settings: ServiceSettings, wiring: AppWiring, *, log_group: pulumi.Input[str],
                        region: str) -> dict:
    """The release's migration step, first in every task of the service: roles, then the locked migration;
    non-essential, so it may exit; the server starts only if it exits 0, so a failed migration fails the task and
    the deployment's circuit breaker rolls the release back."""
    roles = {f"DATABASE_{kind.upper()}_USER": wiring.logins[kind].username for kind in ("runtime", "backup", "drill")}
    return {
        "name": MIGRATION_CONTAINER,
        "image": wiring.image_uri,
        "essential": False,
        "command": MIGRATION_COMMAND,
        **_contract({**database_environment(settings, wiring, region), **roles}, migration_secrets(wiring)),
        "logConfiguration": _logs(log_group, region, MIGRATION_CONTAINER),
        **_filesystem(read_only=True),
        "stopTimeout": JOB_STOP_TIMEOUT,
    }


def job_container(command: list[str], settings: ServiceSettings, wiring: AppWiring, *, login: Login,
                  extra_environment: dict[str, pulumi.Input[str]], log_group: pulumi.Input[str], stream_prefix: str,
                  region: str) -> dict:
    """The same image running `command` instead of Gunicorn, logged in as its own role, with the database's
    variables plus `extra_environment`; no port, no health check, a read-only root filesystem."""
    return {
        "name": CONTAINER,
        "image": wiring.image_uri,
        "essential": True,
        "command": command,
        **_contract({**database_environment(settings, wiring, region), **extra_environment}, login_secrets(login)),
        "logConfiguration": _logs(log_group, region, stream_prefix),
        **_filesystem(read_only=True),
        "stopTimeout": JOB_STOP_TIMEOUT,
    }


def _contract(env: dict[str, pulumi.Input[str]], secrets: Secrets) -> dict:
    """environment and secrets as ECS takes them."""
    return {
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "secrets": [{"name": k, "valueFrom": pulumi.Output.concat(arn, f":{key}::") if key else arn}
                    for k, (arn, key) in sorted(secrets.items())],
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
                            execution_role: aws.iam.Role, task_role: aws.iam.Role, containers: list[dict],
                            opts: pulumi.ResourceOptions, **extra) -> aws.ecs.TaskDefinition:
    """A Fargate task of these containers with an ephemeral /tmp volume (the root filesystem is read-only)."""
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
        container_definitions=pulumi.Output.json_dumps(containers),
        opts=opts,
        **extra,
    )


def execution_role(resource_name: str, *, description: str, context: AwsContext, wiring: AppWiring,
                   log_group_arn: pulumi.Input[str], secrets: list[pulumi.Input[str]],
                   parent: pulumi.Resource) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """The role ECS starts a task with: pull the image, write the log group, read exactly the secrets it injects."""
    role = aws.iam.Role(resource_name, description=description,
                        assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com", context),
                        opts=pulumi.ResourceOptions(parent=parent))
    grant = aws.iam.RolePolicy(resource_name, role=role.id, policy=pulumi.Output.json_dumps(
        execution_policy(wiring, log_group_arn, secrets)), opts=pulumi.ResourceOptions(parent=role))
    return role, grant


def execution_policy(wiring: AppWiring, log_group_arn: pulumi.Input[str], secrets: list[pulumi.Input[str]]) -> dict:
    """Exactly what ECS needs to start the task: pull this image, write this log group, read these secrets and
    decrypt them with this key."""
    statements = [
        # GetAuthorizationToken has no resource-level permissions: "*" is the only resource it takes.
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "PullTheImage", "Effect": "Allow",
         "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
         "Resource": wiring.repository_arn},
        {"Sid": "WriteTheLogGroup", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": pulumi.Output.concat(log_group_arn, ":log-stream:*")},
    ]
    if secrets:
        statements += read_secrets(secrets, wiring.secrets_key_arn)
    return policy(*statements)


def read_secrets(secrets: list[pulumi.Input[str]], kms_key_arn: pulumi.Input[str]) -> list[dict]:
    """Read these secrets and decrypt them with their key, through Secrets Manager only."""
    return [
        {"Sid": "ReadTheSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secrets},
        {"Sid": "DecryptTheSecrets", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": kms_key_arn,
         "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}},
    ]
