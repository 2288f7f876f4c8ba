"""The image as shipped, on the local Docker engine (deploy/docker-engine.sh): built once per session from the
build inputs of the stack whose platform this machine runs (dev: linux/amd64), and run as the prod stack's task
definitions run it, against an AWS stand-in on loopback:

    RDS        a PostgreSQL 15 primary and streaming replica serving TLS with a certificate from a test CA; the image
               is built with that CA as its RDS certificate bundle, so verify-full is checked for real
    ElastiCache  Redis over TLS (same CA), with the plan's own auth token
    Secrets Manager  moto, holding the plan's own secret values (logins, Flask key, Redis token), endpoints swapped
    S3, KMS    moto (the backup tasks: the plan's bucket name, a key of moto's)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import boto3
import pytest

from deploy.local.servers import PostgresServer, RedisServer
from infra.components.task import MIGRATION_CONTAINER
from tests import ecs_task, images
from tests.moto_server import MotoServer

BUILT_FROM = "dev"  # the stack whose image platform (linux/amd64) this machine runs
RUN_AS = "prod"  # the stack whose task definitions the containers run with
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"


@pytest.fixture(scope="session")
def engine():
    if not images.engine_answers():
        pytest.fail("no Docker engine answers: `bash deploy/docker-engine.sh start` starts one (make test does; "
                    "apt-get install docker.io debootstrap first)")
    # Images an earlier session tagged and this one replaces: not left to pile up on a developer's machine.
    images.docker("image", "prune", "--force", "--filter", f"label={images.LABEL}=app")


@pytest.fixture(scope="session")
def test_ca():
    """The CA the stand-in database and cache present certificates from, and the image's "RDS bundle"."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def base_image(engine):
    return images.base_image()


@pytest.fixture(scope="session")
def build_inputs(stacks):
    return images.BuildInputs.of(stacks[BUILT_FROM].one("docker:index/image:Image").inputs)


@pytest.fixture(scope="session")
def app_image(base_image, build_inputs, test_ca):
    """The application image, tagged for this session alone (another session on the same engine builds its own),
    removed at the end; the layers stay cached."""
    bundle = test_ca.cert_pem.bytes()
    tag = f"flask-aws-test-app:{uuid.uuid4().hex[:12]}"
    with images.served("global-bundle.pem", bundle) as url:
        images.build_app_image(build_inputs, base=base_image, bundle_url=url, tag=tag,
                               bundle_sha256=hashlib.sha256(bundle).hexdigest())
    try:
        yield tag
    finally:
        images.docker("rmi", tag, check=False)


def _leaf(ca, *names: str) -> tuple[bytes, bytes]:
    leaf = ca.issue_cert(*names)
    return b"".join(pem.bytes() for pem in leaf.cert_chain_pems), leaf.private_key_pem.bytes()


class AwsStandIn:
    """The prod stack's data tier on loopback, holding the plan's own secrets."""

    def __init__(self, plan, test_ca):
        self.plan = plan
        versions = plan.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        self.plan_secrets = {v.inputs["secretId"]: v.inputs["secretString"] for v in versions}
        master = json.loads(self.plan_secrets[self._secret_arn("database-master")])
        self.database = master["dbname"]
        self.primary = PostgresServer.create(name="rds", certificate=_leaf(test_ca, "localhost"))
        self.replica = PostgresServer.replica_of(self.primary, name="rds-replica")
        self.primary.create_master(master["username"], master["password"], self.database)
        token = self.plan_secrets[self._secret_arn("redis-auth-token")]
        self.redis = RedisServer(password=token, certificate=(*_leaf(test_ca, "localhost"), test_ca.cert_pem.bytes()))
        self.redis.start()
        self.moto = MotoServer().start()
        self.moto_arn = self._store_secrets()
        kms = boto3.client("kms", **self.boto())
        self.backup_key = kms.create_key(Description="the backups key")["KeyMetadata"]["Arn"]

    def _secret_arn(self, suffix: str) -> str:
        found = [arn for arn in self.plan_secrets if arn.split(":")[6].rsplit("-", 2)[0].endswith("/" + suffix)]
        assert len(found) == 1, f"expected one {suffix} secret in the plan, found {found}"
        return found[0]

    def _store_secrets(self) -> dict[str, str]:
        """The plan's secret values in moto under the plan's names, the logins pointing at the stand-in."""
        client = boto3.client("secretsmanager", **self.boto())
        moto_arn = {}
        for arn, value in self.plan_secrets.items():
            if value.startswith("{") and "host" in json.loads(value):
                value = json.dumps({**json.loads(value), "host": "localhost", "port": self.primary.port})
            name = arn.split(":")[6].rsplit("-", 1)[0]
            moto_arn[arn] = client.create_secret(Name=name, SecretString=value)["ARN"]
        return moto_arn

    def boto(self) -> dict:
        env = self.moto.environment(self.plan.region)
        return {"endpoint_url": env["AWS_ENDPOINT_URL"], "region_name": self.plan.region,
                "aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}

    def secret_value(self, value_from: str) -> str:
        """What ECS injects for a `valueFrom`: the whole secret, or one JSON key of it (arn:json-key:stage:id)."""
        parts = value_from.split(":")
        arn, key = ":".join(parts[:7]), (parts[7] if len(parts) > 7 else "")
        value = boto3.client("secretsmanager", **self.boto()).get_secret_value(
            SecretId=self.moto_arn[arn])["SecretString"]
        return str(json.loads(value)[key]) if key else value

    def endpoints(self, definition: dict) -> dict[str, str]:
        """The plan variables that name AWS endpoints, pointed at the stand-in (only those the definition sets)."""
        env = {item["name"]: item["value"] for item in definition.get("environment", [])}
        swapped = {"DATABASE_HOST": "localhost", "DATABASE_PORT": str(self.primary.port),
                   "DATABASE_REPLICA_HOSTS": f"localhost:{self.replica.port}",
                   "REDIS_HOST": "localhost", "REDIS_PORT": str(self.redis.port), "BACKUP_KMS_KEY_ID": self.backup_key}
        swapped.update({name: self.moto_arn[value] for name, value in env.items() if value in self.moto_arn})
        return {name: value for name, value in swapped.items() if name in env}

    def stand_in_access(self, definition: dict) -> dict[str, str]:
        """What only this world needs: moto's endpoint and keys (a task gets its role's credentials from ECS), and
        the test CA for Redis (ElastiCache's certificates chain to a public root the system store holds)."""
        env = {item["name"] for item in definition.get("environment", [])}
        extra = {key: value for key, value in self.moto.environment(self.plan.region).items()
                 if key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        if "REDIS_HOST" in env:
            extra["REDIS_CA_CERTS"] = "/etc/ssl/rds/global-bundle.pem"
        return extra

    def destroy(self) -> None:
        self.moto.stop()
        self.redis.destroy()
        self.replica.destroy()
        self.primary.destroy()


@pytest.fixture(scope="session")
def stand_in(stacks, test_ca):
    world = AwsStandIn(stacks[RUN_AS], test_ca)
    try:
        yield world
    finally:
        world.destroy()


class Task:
    """Containers of one recorded task definition, run on the engine; removed at the end."""

    def __init__(self, plan, task_name: str, image: str, stand_in: AwsStandIn):
        self.resource = plan.named(task_name, TASK_DEFINITION)
        self.image, self.stand_in = image, stand_in
        self.started: list[str] = []
        self.storage = Path(tempfile.mkdtemp(prefix="task-storage-"))  # the task's ephemeral volumes

    def definition(self, container: str) -> dict:
        return ecs_task.container(self.resource.inputs, container)

    def arguments(self, container: str, *, port: int | None = None, **replace: str) -> list[str]:
        definition = self.definition(container)
        name = f"flask-aws-test-{container}-{uuid.uuid4().hex[:8]}"
        self.started.append(name)
        replacements = {**self.stand_in.endpoints(definition), **replace}
        if port:
            replacements["PORT"] = str(port)
        return ecs_task.run_arguments(definition, self.resource.inputs["volumes"], image=self.image,
                                      image_volumes=images.declared_volumes(self.image), storage=self.storage,
                                      region=self.stand_in.plan.region,
                                      container_name=name,
                                      secret_value=self.stand_in.secret_value, replace=replacements,
                                      add=self.stand_in.stand_in_access(definition),
                                      labels={images.LABEL: "container"})

    def run(self, container: str, timeout: float = 300, **replace: str) -> subprocess.CompletedProcess:
        """Run to completion (a migration step, a scheduled job); the container's output and exit code."""
        return images.docker("run", *self.arguments(container, **replace), timeout=timeout, check=False)

    def start(self, container: str, **kwargs) -> str:
        args = self.arguments(container, **kwargs)
        images.docker("run", "--detach", *args)
        return args[1]

    def remove(self) -> None:
        for name in self.started:
            images.docker("rm", "--force", "--volumes", name, check=False)
        shutil.rmtree(self.storage, ignore_errors=True)


@pytest.fixture(scope="session")
def service_task(stacks, app_image, stand_in):
    task = Task(stacks[RUN_AS], "service-task", app_image, stand_in)
    try:
        yield task
    finally:
        task.remove()


@pytest.fixture(scope="session")
def migrated(service_task):
    """The service task's migration step, run first as ECS runs it (the server waits for it to succeed)."""
    done = service_task.run(MIGRATION_CONTAINER)
    assert done.returncode == 0, done.stdout + done.stderr
    return done
