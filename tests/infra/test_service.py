"""ContainerService component: task definition, IAM, service, autoscaling."""

import json
import re
from pathlib import Path

import pulumi_aws as aws
import pytest

from infra.components.service import ContainerService, steady_state_timeout_minutes
from infra.components.task import MIGRATION_COMMAND, RDS_CA_BUNDLE
from infra.offline import harness
from tests.infra.checks import policy_findings, task_definition_problems
from tests.infra.conftest import (
    CONTEXT,
    IMAGE,
    LOGS_KEY_ARN,
    REPOSITORY_ARN,
    SECRET_ARNS,
    SECRETS_KEY_ARN,
    settings_for,
    wiring_for,
)

APP_SG, ALB_SG = "sg-0a0a0a0a0a0a0a0a0", "sg-0b0b0b0b0b0b0b0b0"
CONTRACT = {"APP_ENV", "PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_KEEPALIVE", "GUNICORN_TIMEOUT",
            "GUNICORN_GRACEFUL_TIMEOUT", "GUNICORN_MAX_REQUESTS", "PROXY_COUNT", "MAX_CONTENT_LENGTH",
            "APP_PUBLIC_READS", "RATE_LIMIT_PER_ADDRESS", "RATE_LIMIT_WRITES", "FORWARDED_ALLOW_IPS",
            "DATABASE_HOST",
            "DATABASE_SSLMODE", "DATABASE_SSLROOTCERT", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_SECRET_ARN",
            "DATABASE_REPLICA_HOSTS", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "REDIS_HOST", "REDIS_PORT", "REDIS_TLS",
            "REDIS_AUTH_SECRET_ARN", "SECRET_KEY_SECRET_ARN", "LOG_LEVEL", "AWS_REGION"}


def build(tier="prod", **service) -> harness.Run:
    s = settings_for(tier, service=service)
    wiring = wiring_for(s)

    def program():
        target_group = aws.lb.TargetGroup("tg", port=8000, protocol="HTTP", target_type="ip", vpc_id="vpc-1")
        listener = aws.lb.Listener("listener", load_balancer_arn="arn:lb", port=443,
                                   default_actions=[{"type": "forward", "target_group_arn": target_group.arn}])
        ContainerService("service", s.service, s.load_balancer, wiring=wiring, context=CONTEXT,
                         name_prefix=f"flask-aws-{tier}", cpu_architecture="ARM64",
                         subnet_ids=["subnet-p1", "subnet-p2"], app_security_group_id=APP_SG,
                         lb_security_group_id=ALB_SG, target_group=target_group,
                         lb_arn_suffix="app/flask-aws-prod/0123456789abcdef", listeners=[listener],
                         log_retention_days=s.logs.retention_days)
    return harness.run(program)


def containers(run) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(
        run.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])}


def container(run) -> dict:
    return containers(run)["app"]


def test_task_definition_is_valid_for_register_task_definition():
    for tier in ("dev", "prod"):
        assert task_definition_problems(build(tier).one("aws:ecs/taskDefinition:TaskDefinition").inputs) == ""


def test_a_broken_container_definition_is_caught_by_the_model_check():
    inputs = dict(build().one("aws:ecs/taskDefinition:TaskDefinition").inputs)
    broken = json.loads(inputs["containerDefinitions"])
    broken[1]["stopTimeout"] = "30"
    broken[1]["portMappings"][0]["containerPortt"] = 1
    inputs["containerDefinitions"] = json.dumps(broken)
    report = task_definition_problems(inputs)
    assert "stopTimeout" in report and "containerPortt" in report


def test_task_is_fargate_sized_by_settings_on_graviton():
    task = build().one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert (task["cpu"], task["memory"], task["networkMode"]) == ("1024", "2048", "awsvpc")
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}


def test_environment_follows_the_contract_and_secrets_never_sit_in_it():
    c = container(build())
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert set(env) == CONTRACT
    assert env["DATABASE_REPLICA_HOSTS"] == "r1.example.internal,r2.example.internal"
    assert (env["WEB_CONCURRENCY"], env["DB_POOL_SIZE"], env["DB_MAX_OVERFLOW"]) == ("2", "5", "2")
    assert (env["GUNICORN_KEEPALIVE"], env["PROXY_COUNT"], env["REDIS_TLS"]) == ("75", "1", "true")
    # The body limit the firewall holds too (infra/components/firewall.py): the two agree by construction.
    assert env["MAX_CONTENT_LENGTH"] == "8192"
    assert env["APP_ENV"] == "production"
    # Nothing injected: the application reads its three rotating secrets itself and re-reads them when they rotate.
    assert c["secrets"] == []
    assert (env["DATABASE_SECRET_ARN"], env["REDIS_AUTH_SECRET_ARN"], env["SECRET_KEY_SECRET_ARN"]) == (
        SECRET_ARNS["database-runtime"], SECRET_ARNS["redis-auth-token"], SECRET_ARNS["flask-secret-key"])
    assert (env["DATABASE_SSLMODE"], env["DATABASE_SSLROOTCERT"]) == ("verify-full", RDS_CA_BUNDLE)
    assert not {"SECRET_KEY", "DATABASE_USER", "DATABASE_PASSWORD", "REDIS_AUTH_TOKEN"} & set(env)


def test_the_migration_step_runs_first_with_the_master_and_owner_logins_and_the_server_waits_for_it():
    c = containers(build())
    assert list(c) == ["migrate", "app"]
    migrate = c["migrate"]
    assert migrate["essential"] is False and migrate["command"] == MIGRATION_COMMAND
    assert c["app"]["dependsOn"] == [{"containerName": "migrate", "condition": "SUCCESS"}]
    env = {e["name"]: e["value"] for e in migrate["environment"]}
    assert (env["DATABASE_RUNTIME_USER"], env["DATABASE_BACKUP_USER"], env["DATABASE_DRILL_USER"]) == (
        "app_runtime", "app_backup", "app_drill")
    assert (env["DATABASE_SSLMODE"], env["DATABASE_SSLROOTCERT"]) == ("verify-full", RDS_CA_BUNDLE)
    secrets = {s["name"]: s["valueFrom"] for s in migrate["secrets"]}
    arn = SECRET_ARNS
    assert secrets == {
        "DATABASE_USER": arn["database-owner"] + ":username::",
        "DATABASE_PASSWORD": arn["database-owner"] + ":password::",
        "DATABASE_MASTER_USER": arn["database-master"] + ":username::",
        "DATABASE_MASTER_PASSWORD": arn["database-master"] + ":password::",
        **{f"DATABASE_{kind.upper()}_PASSWORD": arn[f"database-{kind}"] + ":password::"
           for kind in ("runtime", "backup", "drill")}}
    assert not {"SECRET_KEY_SECRET_ARN", "REDIS_HOST", "DATABASE_SECRET_ARN", "PORT"} & set(env)


def test_the_serving_container_holds_no_master_or_owner_secret_on_the_recorded_plan(stacks):
    """On each stack as planned: the web container's definition names neither the master's nor the owner's
    secret, and its task role may not read them."""
    for run in stacks.values():
        arns = json.loads(json.dumps(run.outputs["databaseLoginSecretArns"]))
        task = run.named("service-task", "aws:ecs/taskDefinition:TaskDefinition")
        (app,) = [c for c in json.loads(task.inputs["containerDefinitions"]) if c["name"] == "app"]
        text = json.dumps(app)
        assert arns["master"] not in text and arns["owner"] not in text and arns["runtime"] in text
        role_policy = run.named("service-task-secrets", "aws:iam/rolePolicy:RolePolicy").inputs["policy"]
        assert arns["master"] not in role_policy and arns["owner"] not in role_policy


def test_container_logs_checks_health_stops_gracefully_and_writes_only_to_tmp():
    run = build()
    c = container(run)
    log_group = run.one("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["retentionInDays"] == 90 and log_group.inputs["kmsKeyId"] == LOGS_KEY_ARN
    assert c["logConfiguration"]["options"]["awslogs-group"] == log_group.inputs["name"]
    assert c["image"] == IMAGE and "@sha256:" in c["image"]
    assert c["healthCheck"]["command"][0] == "CMD" and "/health" in c["healthCheck"]["command"][-1]
    assert c["healthCheck"]["startPeriod"] == 20
    assert c["stopTimeout"] == 30 > 25
    assert c["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    assert c["portMappings"] == [{"containerPort": 8000, "protocol": "tcp", "name": "http"}]


def test_execution_role_may_do_exactly_what_starting_the_task_needs():
    run = build()
    policy = json.loads(run.named("service-execution", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["EcrLogin"]["Resource"] == "*" and by_sid["EcrLogin"]["Action"] == "ecr:GetAuthorizationToken"
    assert by_sid["PullTheImage"]["Resource"] == REPOSITORY_ARN
    log_arn = run.one("aws:cloudwatch/logGroup:LogGroup").outputs["arn"]
    assert by_sid["WriteTheLogGroup"]["Resource"] == f"{log_arn}:log-stream:*"
    # What ECS injects: the migration step's logins, each secret once; never the Redis token or the Flask keys.
    assert sorted(by_sid["ReadTheSecrets"]["Resource"]) == sorted(SECRET_ARNS[f"database-{kind}"] for kind in (
        "owner", "master", "runtime", "backup", "drill"))
    assert by_sid["DecryptTheSecrets"]["Resource"] == SECRETS_KEY_ARN
    assert set(by_sid) == {"EcrLogin", "PullTheImage", "WriteTheLogGroup", "ReadTheSecrets", "DecryptTheSecrets"}


def test_the_task_role_reads_the_three_secrets_the_application_reads_and_no_other():
    policy = json.loads(build().named("service-task-secrets", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ReadTheSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    assert sorted(by_sid["ReadTheSecrets"]["Resource"]) == sorted(
        [SECRET_ARNS["database-runtime"], SECRET_ARNS["redis-auth-token"], SECRET_ARNS["flask-secret-key"]])
    assert by_sid["DecryptTheSecrets"]["Condition"] == {
        "StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}


@pytest.mark.parametrize("tier,exec_enabled", [("dev", True), ("prod", False)])
def test_task_role_gets_ecs_exec_only_by_setting(tier, exec_enabled):
    run = build(tier)
    exec_policies = [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "service-task-exec"]
    assert bool(exec_policies) is exec_enabled
    assert run.one("aws:ecs/service:Service").inputs["enableExecuteCommand"] is exec_enabled


@pytest.mark.parametrize("tier", ["dev", "prod"])
def test_every_iam_policy_passes_parliament(tier):
    for policy in build(tier).of_type("aws:iam/rolePolicy:RolePolicy"):
        assert policy_findings(policy.inputs["policy"]) == [], policy.name
        assert '"Action": "*"' not in policy.inputs["policy"]


def test_parliament_check_can_fail():
    assert policy_findings({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})


def test_service_runs_private_behind_the_load_balancer_with_rollback():
    run = build()
    service = run.one("aws:ecs/service:Service")
    i = service.inputs
    assert i["networkConfiguration"] == {"subnets": ["subnet-p1", "subnet-p2"], "securityGroups": [APP_SG],
                                         "assignPublicIp": False}
    assert i["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert (i["deploymentMinimumHealthyPercent"], i["deploymentMaximumPercent"]) == (100, 200)
    assert i["healthCheckGracePeriodSeconds"] == 60 and i["waitForSteadyState"] is True
    assert i["loadBalancers"][0]["containerName"] == "app" and i["loadBalancers"][0]["containerPort"] == 8000
    assert i["desiredCount"] == 3 and service.ignore_changes == ["desiredCount"]
    assert i["capacityProviderStrategies"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]
    (rule,) = [r for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    assert (rule.inputs["securityGroupId"], rule.inputs["referencedSecurityGroupId"]) == (APP_SG, ALB_SG)
    assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (8000, 8000)


def test_dev_puts_tasks_on_fargate_spot():
    strategies = build("dev").one("aws:ecs/service:Service").inputs["capacityProviderStrategies"]
    assert {"capacityProvider": "FARGATE_SPOT", "weight": 1} in strategies


def test_cluster_has_container_insights():
    cluster = build().one("aws:ecs/cluster:Cluster").inputs
    assert cluster["settings"] == [{"name": "containerInsights", "value": "enabled"}]


def test_autoscaling_tracks_cpu_memory_and_requests_per_target():
    run = build()
    target = run.one("aws:appautoscaling/target:Target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (3, 20)
    assert target["resourceId"] == "service/flask-aws-prod/app"
    policies = {p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
        "predefinedMetricType"]: p.inputs["targetTrackingScalingPolicyConfiguration"]
        for p in run.of_type("aws:appautoscaling/policy:Policy")}
    assert set(policies) == {"ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization",
                             "ALBRequestCountPerTarget"}
    requests = policies["ALBRequestCountPerTarget"]
    tg_suffix = run.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"]
    assert requests["predefinedMetricSpecification"]["resourceLabel"] == \
        f"app/flask-aws-prod/0123456789abcdef/{tg_suffix}"
    assert (requests["targetValue"], requests["scaleInCooldown"], requests["scaleOutCooldown"]) == (1000, 300, 60)
    assert policies["ECSServiceAverageCPUUtilization"]["targetValue"] == 60


def test_steady_state_wait_fits_health_checks_and_draining():
    s = settings_for("prod")
    minutes = steady_state_timeout_minutes(s.service, s.load_balancer)
    wave = 20 + 60 + 2 * 15 + 20 + 30
    assert minutes * 60 >= 3 * wave and minutes >= 10
    slow = settings_for("prod", service={"startupSeconds": 300, "healthCheckGracePeriodSeconds": 600})
    assert steady_state_timeout_minutes(slow.service, slow.load_balancer) > minutes


def test_component_outputs():
    component = build().one("flask-aws:service:ContainerService")
    assert component.registered_outputs["cluster_name"] == "flask-aws-prod"
    assert component.registered_outputs["service_name"] == "app"


def test_pulumi_waits_for_steady_state_as_long_as_a_deployment_can_take():
    assert build().one("aws:ecs/service:Service").custom_timeouts == {"create": "10m", "update": "10m"}
    slow = build(startupSeconds=300, healthCheckGracePeriodSeconds=900, stopTimeoutSeconds=120,
                 gracefulTimeoutSeconds=100).one("aws:ecs/service:Service")
    # 3 x (300 + 900 + 2 x 15 + 20 + 120) s = 68.5 min
    assert slow.custom_timeouts == {"create": "69m", "update": "69m"}


def test_ecs_exec_gets_a_writable_root_filesystem_and_only_then():
    assert container(build("dev"))["readonlyRootFilesystem"] is False
    assert container(build("prod"))["readonlyRootFilesystem"] is True


def test_every_task_volume_path_is_a_volume_the_image_declares(stacks):
    """Fargate gives a task volume to a container owned by root, mode 0755, unless the image declares a VOLUME at
    its path (then it starts as the image's directory): without it user 10001 cannot write its /tmp (the container
    tests run the task that way and caught it)."""
    dockerfile = (Path(__file__).resolve().parents[2] / "app" / "Dockerfile").read_text()
    declared = {path for line in re.findall(r"^VOLUME (\[.*\])$", dockerfile, re.M) for path in json.loads(line)}
    for stack, run in stacks.items():
        for task in run.of_type("aws:ecs/taskDefinition:TaskDefinition"):
            for container in json.loads(task.inputs["containerDefinitions"]):
                paths = {m["containerPath"] for m in container.get("mountPoints", [])}
                assert paths and paths <= declared, (stack, task.name, container["name"], paths - declared)
