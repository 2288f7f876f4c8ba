"""ops.verify against moto (ECS, ELB, RDS, CloudWatch, ElastiCache) and the real application answering
/health/detailed on PostgreSQL and Redis."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

import boto3
import pytest
from werkzeug.serving import make_server

from deploy.local.servers import free_port
from ops import verify
from ops.aws import main
from tests.moto_server import MotoServer

RUNNING = 2  # moto reports this many running tasks for every new service


@pytest.fixture(scope="module")
def moto_steady():
    server = MotoServer(settings={"MOTO_ECS_SERVICE_RUNNING": str(RUNNING)}).start()
    yield server
    server.stop()


@pytest.fixture
def app_url(postgres, redis_server, monkeypatch):
    """The application on the test PostgreSQL and Redis, served over HTTP in this process."""
    primary, _ = postgres
    if redis_server.process is None:
        redis_server.start()
    name = f"verify_{uuid.uuid4().hex[:8]}"
    primary.create_database(name)
    env = {"APP_ENV": "testing", "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(primary.port),
           "DATABASE_NAME": name, "DATABASE_USER": "postgres", "DATABASE_PASSWORD": primary.password,
           "REDIS_URL": redis_server.url(), "HEALTH_CACHE_SECONDS": "0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_REPLICA_HOSTS", raising=False)
    from webapp import create_app, tokens
    from webapp.database import db

    app = create_app()
    with app.app_context():
        db.create_all(bind_key=None)
        monkeypatch.setenv("VERIFY_API_TOKEN", tokens.create("verify"))  # /health/detailed answers to a token
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def deployed(moto_steady, app_url, monkeypatch):
    """A stack's worth of resources on moto, and its outputs as `pulumi stack output --json` gives them."""
    moto_steady.reset()
    for key, value in moto_steady.environment().items():
        monkeypatch.setenv(key, value)
    ecs, elbv2, ec2 = boto3.client("ecs"), boto3.client("elbv2"), boto3.client("ec2")
    rds, elasticache, cloudwatch = boto3.client("rds"), boto3.client("elasticache"), boto3.client("cloudwatch")
    ecs.create_cluster(clusterName="flask-aws-prod")
    task = ecs.register_task_definition(
        family="flask-aws-prod-app", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="1024",
        memory="2048", containerDefinitions=[{"name": "app", "image": "app@sha256:" + "a" * 64}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="flask-aws-prod", serviceName="app", taskDefinition=task, desiredCount=RUNNING,
                       launchType="FARGATE")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    group = elbv2.create_target_group(Name="app", Protocol="HTTP", Port=8000, VpcId=vpc,
                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": "10.30.1.10"}, {"Id": "10.30.2.10"}])
    rds.create_db_instance(DBInstanceIdentifier="flask-aws-prod-db", DBInstanceClass="db.r6g.large",
                           Engine="postgres", MasterUsername="app_admin", MasterUserPassword="a-long-password",
                           AllocatedStorage=100, BackupRetentionPeriod=30)
    rds.create_db_instance_read_replica(DBInstanceIdentifier="flask-aws-prod-db-replica-1",
                                        SourceDBInstanceIdentifier="flask-aws-prod-db")
    elasticache.create_replication_group(ReplicationGroupId="flask-aws-prod-redis", ReplicationGroupDescription="r",
                                         CacheNodeType="cache.r7g.large", Engine="redis", NumCacheClusters=3)
    outputs = {"region": "eu-west-1", "clusterName": "flask-aws-prod", "serviceName": "app",
               "taskDefinitionArn": task, "targetGroupArn": group, "databaseIdentifier": "flask-aws-prod-db",
               "databaseReplicaIdentifiers": ["flask-aws-prod-db-replica-1"],
               "redisReplicationGroupId": "flask-aws-prod-redis", "url": app_url, "kmsKeyArn": "arn:..."}
    return outputs, cloudwatch


def replica_lag(cloudwatch, seconds: float) -> None:
    cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=[{
        "MetricName": "ReplicaLag", "Value": seconds, "Unit": "Seconds", "Timestamp": datetime.now(UTC),
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "flask-aws-prod-db-replica-1"}]}])


def cli(capsys, tmp_path, outputs, *options):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    code = main(lambda: verify.run([str(path), *options]))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_healthy_stack_passes_every_check(deployed, capsys, tmp_path):
    outputs, cloudwatch = deployed
    replica_lag(cloudwatch, 2)
    code, out, err = cli(capsys, tmp_path, outputs)
    assert code == 0, out + err
    assert f"PASS  ECS service flask-aws-prod/app: {RUNNING}/{RUNNING} running, rollout COMPLETED" in out
    assert "PASS  load balancer targets: 2/2 healthy" in out
    assert "PASS  RDS primary flask-aws-prod-db: available" in out
    assert "PASS  RDS replica flask-aws-prod-db-replica-1: available, replica lag 2 s (max 30 s)" in out
    assert "PASS  Redis flask-aws-prod-redis: status available" in out
    assert f"PASS  GET {outputs['url']}/health/detailed: HTTP 200" in out
    assert out.strip().endswith("6/6 checks passed")


def test_each_unhealthy_part_fails_its_check_and_the_run(deployed, capsys, tmp_path, redis_server):
    outputs, cloudwatch = deployed
    replica_lag(cloudwatch, 95)
    boto3.client("ecs").update_service(cluster="flask-aws-prod", service="app", desiredCount=RUNNING + 1)
    outputs = {**outputs, "taskDefinitionArn": outputs["taskDefinitionArn"].removesuffix(":1") + ":2"}
    redis_server.stop()
    try:
        code, out, _ = cli(capsys, tmp_path, outputs, "--max-replica-lag", "60")
    finally:
        redis_server.start()
    assert code == 1 and out.strip().endswith("checks passed: NOT healthy")
    assert "FAIL  ECS service flask-aws-prod/app:" in out
    assert "not the deployed flask-aws-prod-app:2 (rolled back?)" in out
    assert "FAIL  RDS replica flask-aws-prod-db-replica-1: available, replica lag 95 s (max 60 s)" in out
    assert f"FAIL  GET {outputs['url']}/health/detailed: HTTP 503, failing: redis" in out


def test_a_service_still_rolling_out_and_missing_metrics_fail(deployed, capsys, tmp_path):
    outputs, _ = deployed
    task = outputs["taskDefinitionArn"]
    boto3.client("ecs").create_service(cluster="flask-aws-prod", serviceName="slow", taskDefinition=task,
                                       desiredCount=RUNNING + 3, launchType="FARGATE")
    code, out, _ = cli(capsys, tmp_path, {**outputs, "serviceName": "slow"})
    assert code == 1
    assert f"FAIL  ECS service flask-aws-prod/slow: {RUNNING}/{RUNNING + 3} tasks running; rollout IN_PROGRESS" in out
    assert "no ReplicaLag data in the last 10 minutes" in out


def test_a_missing_resource_is_a_failed_check_and_the_others_still_run(deployed, capsys, tmp_path):
    outputs, cloudwatch = deployed
    replica_lag(cloudwatch, 1)
    code, out, err = cli(capsys, tmp_path, {**outputs, "redisReplicationGroupId": "gone",
                                            "databaseReplicaIdentifiers": ["gone-too"]})
    assert code == 1 and "Traceback" not in err
    assert "FAIL  Redis: describing replication group gone: ReplicationGroupNotFoundFault" in out
    assert "FAIL  RDS: describing gone-too: DBInstanceNotFound" in out
    assert "PASS  ECS service" in out and "/health/detailed: HTTP 200" in out


def test_without_a_token_only_liveness_is_checked_and_said_so(deployed, capsys, tmp_path, monkeypatch):
    outputs, cloudwatch = deployed
    replica_lag(cloudwatch, 1)
    monkeypatch.delenv("VERIFY_API_TOKEN")
    code, out, _ = cli(capsys, tmp_path, outputs)
    assert code == 0, out
    assert f"PASS  GET {outputs['url']}/health (set VERIFY_API_TOKEN to check /health/detailed): HTTP 200" in out
    monkeypatch.setenv("VERIFY_API_TOKEN", "notes_not-a-token")
    code, out, _ = cli(capsys, tmp_path, outputs)
    assert code == 1 and f"FAIL  GET {outputs['url']}/health/detailed: HTTP 401" in out


def test_the_token_never_goes_over_plain_http_off_this_machine(monkeypatch):
    sent = []

    class Answer:
        status = 200

        def read(self):
            return b'{"status": "ok"}'

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(verify.urllib.request, "urlopen", lambda request, timeout: sent.append(request) or Answer())
    check = verify.health("http://app.example.org", 5, "notes_secret")
    assert check.ok and sent[0].full_url == "http://app.example.org/health" and not sent[0].headers
    verify.health("https://app.example.org", 5, "notes_secret")
    assert sent[1].full_url.endswith("/health/detailed") and sent[1].headers["Authorization"] == "Bearer notes_secret"


def test_an_unreachable_url_fails_its_check(deployed, capsys, tmp_path):
    outputs, cloudwatch = deployed
    replica_lag(cloudwatch, 1)
    code, out, _ = cli(capsys, tmp_path, {**outputs, "url": f"http://127.0.0.1:{free_port()}"}, "--timeout", "2")
    assert code == 1 and "/health/detailed: no answer" in out


def test_bad_outputs_are_one_line_and_exit_1(capsys, tmp_path):
    code, _, err = cli(capsys, tmp_path, {"url": "https://example.com"})
    assert code == 1 and "lacks the stack outputs region, clusterName" in err
    assert cli(capsys, tmp_path, ["not", "an", "object"])[0] == 1
    (tmp_path / "broken.json").write_text("{not json")
    assert main(lambda: verify.run([str(tmp_path / "broken.json")])) == 1
    assert "is not JSON" in capsys.readouterr().err
    assert main(lambda: verify.run([str(tmp_path / "missing.json")])) == 1
    assert "cannot read" in capsys.readouterr().err


def test_the_stack_exports_every_output_verify_needs():
    from infra.offline import harness

    outputs = harness.run_stack("prod").outputs
    assert set(verify.REQUIRED) <= set(outputs)


def test_wait_checks_again_until_everything_passes(monkeypatch, tmp_path, capsys):
    """--wait: a rollout still in progress right after `pulumi up` passes once it completes."""
    rounds = [[verify.Check("ECS service", False, "rollout IN_PROGRESS")], [verify.Check("ECS service", True, "ok")]]
    monkeypatch.setattr(verify, "verify", lambda *args: rounds.pop(0))
    monkeypatch.setattr(verify, "RETRY_SECONDS", 0)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({key: "x" for key in verify.REQUIRED}))
    assert main(lambda: verify.run([str(outputs), "--wait", "60"])) == 0
    out = capsys.readouterr()
    assert "1 checks failing; checking again" in out.err and "PASS  ECS service: ok" in out.out and rounds == []
    rounds[:] = [[verify.Check("ECS service", False, "rollout FAILED")]] * 3
    assert main(lambda: verify.run([str(outputs)])) == 1  # without --wait: once
