"""A container definition from the recorded plan, run by the local Docker engine the way ECS on Fargate runs it:
same command, environment, user, read-only root with the task's ephemeral volumes, init process, stop timeout and
health check; secrets injected the way ECS injects them (each `valueFrom` read from Secrets Manager, here moto).

ECS's own variables are set as on Fargate (AWS_REGION, AWS_DEFAULT_REGION, AWS_EXECUTION_ENV; not the credentials
and metadata endpoints, which have no stand-in). What cannot be the same here is replaced explicitly: the network
(the host's, on loopback ports), the log driver (docker's own instead of awslogs), and the variables that name AWS
endpoints (hosts, ports, ARNs), which a test passes as `replace`: each must be a variable the plan sets, so a
renamed one fails the test instead of being ignored. Any key of the definition this module does not know is an
error for the same reason."""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path

ECS_DEFAULT_STOP_TIMEOUT = 30
# Keys of a container definition and how they are treated here.
APPLIED = {"name", "image", "command", "entryPoint", "environment", "secrets", "user", "workingDirectory",
           "readonlyRootFilesystem", "mountPoints", "linuxParameters", "stopTimeout", "healthCheck"}
NOT_APPLICABLE = {
    "essential",  # one container per docker run
    "portMappings",  # host networking: the container's port is the host's (checked against PORT)
    "logConfiguration",  # awslogs -> docker's json-file log, read with `docker logs`
    "dependsOn",  # the test starts the containers in that order and checks the condition itself
}


def container(task_definition_inputs: dict, name: str) -> dict:
    definitions = json.loads(task_definition_inputs["containerDefinitions"])
    return next(d for d in definitions if d["name"] == name)


def fargate_environment(region: str) -> dict[str, str]:
    """What ECS sets in every Fargate container (AWS ECS developer guide, "Amazon ECS environment variables")."""
    return {"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}


def run_arguments(definition: dict, task_volumes: list[dict], *, image: str, image_volumes: set[str],
                  storage: Path, region: str, container_name: str,
                  secret_value: Callable[[str], str], replace: dict[str, str] | None = None,
                  add: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> list[str]:
    """`docker run` arguments (without `docker run`) for one container definition.

    secret_value: valueFrom -> the value ECS would inject (`arn` or `arn:json-key::`).
    replace: plan variables given another value here (endpoints); add: variables only this world needs (the
    stand-in's endpoint and credentials)."""
    unknown = set(definition) - APPLIED - NOT_APPLICABLE
    if unknown:
        raise ValueError(f"the container definition has keys this emulation does not apply: {sorted(unknown)}")
    environment = {item["name"]: item["value"] for item in definition.get("environment", [])}
    missing = set(replace or {}) - set(environment)
    if missing:
        raise ValueError(f"replacing variables the plan does not set: {sorted(missing)}")
    clash = set(add or {}) & (set(environment) | {s["name"] for s in definition.get("secrets", [])})
    if clash:
        raise ValueError(f"adding variables the plan already sets: {sorted(clash)}")
    environment = {**fargate_environment(region), **environment, **(replace or {}), **(add or {})}
    for secret in definition.get("secrets", []):
        environment[secret["name"]] = secret_value(secret["valueFrom"])

    args = ["--name", container_name, "--network", "host"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    for key, value in sorted(environment.items()):
        args += ["--env", f"{key}={value}"]
    if definition.get("user"):
        args += ["--user", definition["user"]]
    if definition.get("workingDirectory"):
        args += ["--workdir", definition["workingDirectory"]]
    if definition.get("readonlyRootFilesystem"):
        args.append("--read-only")
    args += _volumes(definition.get("mountPoints", []), task_volumes, image_volumes, storage)
    linux = definition.get("linuxParameters", {})
    if set(linux) - {"initProcessEnabled"}:
        raise ValueError(f"linuxParameters this emulation does not apply: {sorted(linux)}")
    if linux.get("initProcessEnabled"):
        args.append("--init")
    # ECS waits 30 s after SIGTERM when the definition does not say (Docker's own default is 10 s).
    args += ["--stop-timeout", str(definition.get("stopTimeout", ECS_DEFAULT_STOP_TIMEOUT))]
    args += _health_check(definition.get("healthCheck"))
    if definition.get("entryPoint"):
        args += ["--entrypoint", definition["entryPoint"][0]]
    args.append(image)
    args += definition.get("entryPoint", [])[1:]
    args += definition.get("command", [])
    return args


def _volumes(mount_points: list[dict], task_volumes: list[dict], image_volumes: set[str], storage: Path) -> list[str]:
    """A task volume with no host path, EFS or Docker configuration is Fargate's ephemeral storage, bind-mounted: an
    empty directory owned by root with mode 0755, unless the image declares a VOLUME at that path, in which case it
    starts as a copy of the image's directory (contents, owner, mode). Here: a fresh root-owned 0755 directory under
    `storage` bind-mounted, or a Docker anonymous volume, which makes exactly that copy. (A tmpfs will not do: Docker
    gives it the mode of the image's directory.)"""
    volumes = {v["name"]: v for v in task_volumes}
    args = []
    for mount in mount_points:
        volume = volumes[mount["sourceVolume"]]
        if set(volume) != {"name"}:
            raise ValueError(f"volume {volume} is not ephemeral task storage; this emulation knows only that")
        path, read_only = mount["containerPath"], ",readonly" if mount.get("readOnly") else ""
        if path in image_volumes:
            args += ["--mount", f"type=volume,destination={path}{read_only}"]
        else:
            source = Path(tempfile.mkdtemp(prefix=f"{volume['name']}-", dir=storage))
            source.chmod(0o755)
            args += ["--mount", f"type=bind,source={source},destination={path}{read_only}"]
    return args


def _health_check(check: dict | None) -> list[str]:
    """ECS's health check as Docker's (the engine feature ECS drives). Docker's command line takes the check as a
    shell command only, so CMD's words are quoted into one (the image has /bin/sh; ECS runs them without a shell).
    Without a healthCheck ECS ignores the image's HEALTHCHECK, so the emulation turns it off."""
    if not check:
        return ["--no-healthcheck"]
    kind, *words = check["command"]
    if kind not in ("CMD", "CMD-SHELL"):
        raise ValueError(f"health check command must start with CMD or CMD-SHELL, not {kind!r}")
    command = shlex.join(words) if kind == "CMD" else words[0]
    return ["--health-cmd", command, "--health-interval", f"{check.get('interval', 30)}s",
            "--health-timeout", f"{check.get('timeout', 5)}s", "--health-retries", str(check.get("retries", 3)),
            "--health-start-period", f"{check.get('startPeriod', 0)}s"]
