"""The emulation's guards (tests/ecs_task.py), without an engine: what it does not know, it refuses."""

from __future__ import annotations

import os

import pytest

from tests import ecs_task

VOLUMES = [{"name": "tmp"}]
BASE = {"name": "app", "image": "x", "environment": [{"name": "DATABASE_HOST", "value": "db.aws"}],
        "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp"}]}


def arguments(definition: dict, tmp_path, image_volumes=frozenset(), **kwargs) -> list[str]:
    return ecs_task.run_arguments(definition, VOLUMES, image="img", image_volumes=set(image_volumes),
                                  storage=tmp_path, region="eu-west-1", container_name="c",
                                  secret_value=lambda v: f"<{v}>", **kwargs)


def test_a_key_it_does_not_apply_is_refused(tmp_path):
    with pytest.raises(ValueError, match="ulimits"):
        arguments({**BASE, "ulimits": [{"name": "nofile", "softLimit": 1, "hardLimit": 1}]}, tmp_path)
    with pytest.raises(ValueError, match="capabilities"):
        arguments({**BASE, "linuxParameters": {"capabilities": {"drop": ["ALL"]}}}, tmp_path)


def test_only_variables_the_plan_sets_are_replaced_and_added_ones_are_new(tmp_path):
    with pytest.raises(ValueError, match="DATABASE_HOSTNAME"):
        arguments(BASE, tmp_path, replace={"DATABASE_HOSTNAME": "localhost"})
    with pytest.raises(ValueError, match="DATABASE_HOST"):
        arguments(BASE, tmp_path, add={"DATABASE_HOST": "localhost"})
    args = arguments({**BASE, "secrets": [{"name": "DATABASE_PASSWORD", "valueFrom": "arn:x:password::"}]},
                     tmp_path, replace={"DATABASE_HOST": "localhost"})
    assert "DATABASE_HOST=localhost" in args and "DATABASE_PASSWORD=<arn:x:password::>" in args
    assert "AWS_DEFAULT_REGION=eu-west-1" in args and "AWS_EXECUTION_ENV=AWS_ECS_FARGATE" in args


def test_fargate_volumes_defaults_and_health_check(tmp_path):
    """A task volume is root's 0755 unless the image declares it; ECS's 30 s stop timeout; no image health check
    unless the definition has one."""
    args = arguments(BASE, tmp_path)
    mount = args[args.index("--mount") + 1]
    assert mount.startswith("type=bind,") and mount.endswith(",destination=/tmp")
    source = mount.split(",")[1].removeprefix("source=")
    assert oct(os.stat(source).st_mode & 0o7777) == "0o755"
    assert args[args.index("--stop-timeout") + 1] == "30" and "--no-healthcheck" in args
    declared = arguments(BASE, tmp_path, image_volumes={"/tmp"})
    assert declared[declared.index("--mount") + 1] == "type=volume,destination=/tmp"
    checked = arguments({**BASE, "healthCheck": {"command": ["CMD", "python", "-c", "print('a b')"],
                                                 "interval": 15}}, tmp_path)
    assert checked[checked.index("--health-cmd") + 1] == "python -c 'print('\"'\"'a b'\"'\"')'"
    with pytest.raises(ValueError, match="CMD"):
        arguments({**BASE, "healthCheck": {"command": ["NONE"]}}, tmp_path)
