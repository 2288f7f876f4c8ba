"""Cross-layer checks in settings validation: values that must agree between ALB, ECS, Gunicorn and RDS."""

import pytest

from infra import settings, sizing
from tests.infra.conftest import settings_for


def problems(tier="prod", **groups) -> dict[str, settings.Problem]:
    try:
        settings_for(tier, **groups)
    except settings.SettingsError as err:
        return {p.key.split(":", 1)[1]: p for p in err.problems}
    return {}


def test_tier_defaults_pass_every_cross_layer_check():
    for tier in ("dev", "staging", "prod"):
        assert problems(tier) == {}


def test_gunicorn_keepalive_must_outlast_the_load_balancer_idle_timeout():
    found = problems(service={"keepaliveSeconds": 60})
    assert "intermittent 502s" in found["service.keepaliveSeconds"].why
    assert problems(service={"keepaliveSeconds": 61}) == {}
    assert "service.keepaliveSeconds" in problems(loadBalancer={"idleTimeoutSeconds": 90})


def test_graceful_timeout_must_end_before_ecs_kills_the_container():
    assert "service.gracefulTimeoutSeconds" in problems(service={"gracefulTimeoutSeconds": 30})
    assert problems(service={"gracefulTimeoutSeconds": 29}) == {}


def test_stop_timeout_is_at_most_120():
    assert problems(service={"stopTimeoutSeconds": 121})["service.stopTimeoutSeconds"].allowed == "2..120"
    assert problems(service={"stopTimeoutSeconds": 120}) == {}


def test_health_check_grace_period_must_cover_startup_and_the_healthy_checks():
    found = problems(service={"startupSeconds": 90, "healthCheckGracePeriodSeconds": 90})
    assert "90 + healthyThreshold 2 x interval 15 s = 120 s" in found["service.healthCheckGracePeriodSeconds"].why
    assert problems(service={"startupSeconds": 90, "healthCheckGracePeriodSeconds": 120}) == {}


def test_health_check_thresholds_must_fit_the_grace_period():
    assert "service.healthCheckGracePeriodSeconds" in problems(loadBalancer={"healthyThreshold": 5})
    assert problems(loadBalancer={"healthyThreshold": 5}, service={"healthCheckGracePeriodSeconds": 95}) == {}


def test_startup_fits_the_container_health_check_start_period_limit():
    assert problems(service={"startupSeconds": 301, "healthCheckGracePeriodSeconds": 400})[
        "service.startupSeconds"].allowed == "1..300"


def test_fargate_spot_needs_x86_64():
    assert "service.spotWeight" in problems("dev", image={"platform": "linux/arm64"})
    assert "service.spotWeight" in problems("prod", service={"spotWeight": 1})
    assert problems("prod", service={"spotWeight": 1}, image={"platform": "linux/amd64"}) == {}


def test_health_check_timeout_must_be_shorter_than_the_interval():
    assert "loadBalancer.healthCheckTimeoutSeconds" in problems(loadBalancer={"healthCheckTimeoutSeconds": 15})


def test_deregistration_delay_stays_short():
    assert "loadBalancer.deregistrationDelaySeconds" in problems(loadBalancer={"deregistrationDelaySeconds": 300})


@pytest.mark.parametrize("cpu,memory,ok", [(256, 512, True), (256, 4096, False), (512, 1024, True),
                                           (1024, 1024, False), (1024, 8192, True), (4096, 30720, True),
                                           (4096, 32768, False), (8192, 20480, True), (8192, 18432, False)])
def test_task_size_is_a_fargate_pair(cpu, memory, ok):
    found = problems(service={"cpu": cpu, "memory": memory, "maxTasks": 4})
    assert ("service.memory" not in found) is ok, found


def test_connection_budget_against_the_primary():
    # prod: db.r6g.large -> ~1586 connections; 80 % = 1268. 20 tasks x 2 workers x 7 = 280 fits; 100 x 2 x 7 = 1400
    # does not.
    found = problems(service={"maxTasks": 100})
    problem = found["service.dbPoolSize"]
    assert "100 x workers 2 x (dbPoolSize 5 + dbMaxOverflow 2) = 1400" in problem.why
    assert "db.r6g.large" in problem.why and "<= 6" in problem.allowed


def test_connection_budget_against_a_smaller_replica():
    found = problems(database={"replicaInstanceClass": "db.t4g.medium"}, service={"maxTasks": 30})
    assert "db.t4g.medium" in found["service.dbPoolSize"].why


def test_connection_budget_on_a_tiny_dev_database():
    assert "service.dbPoolSize" in problems("dev", service={"maxTasks": 6})
    assert problems("dev", service={"maxTasks": 5}) == {}  # 5 x 2 x 7 = 70 <= 0.8 x 99


def test_an_instance_class_without_a_memory_figure_is_reported():
    assert "database.instanceClass" in problems(database={"instanceClass": "db.x2g.large"})


def test_max_connections_follows_the_rds_formula():
    assert sizing.max_connections("db.t4g.micro") == int(1024**3 * 0.88 / 9531392)
    assert sizing.max_connections("db.r6g.large") == int(16 * 1024**3 * 0.88 / 9531392)
    assert sizing.max_connections("db.r6g.16xlarge") == 5000
    assert sizing.max_connections("db.m6g.micro") is None


def test_https_needs_a_certificate_and_plain_http_is_dev_only():
    no_tls = {"domain": "", "hostedZoneId": ""}
    assert "loadBalancer.domain" in problems("staging", loadBalancer=no_tls)
    assert "loadBalancer.allowHttp" in problems("prod", loadBalancer={"allowHttp": True})
    assert problems("dev") == {}
    assert "loadBalancer.domain" in problems("dev", loadBalancer={"allowHttp": False})
    assert "loadBalancer.hostedZoneId" in problems("prod", loadBalancer={"hostedZoneId": ""})
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-000000000000"
    assert problems("prod", loadBalancer={"hostedZoneId": "", "certificateArn": arn}) == {}


def test_prebuilt_images_are_referenced_by_digest():
    assert "image.uri" in problems(image={"uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:latest"})
    digest = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flask-aws-prod/app@sha256:" + "a" * 64
    assert problems(image={"uri": digest}) == {}


def test_autoscaling_bounds():
    assert "service.maxTasks" in problems(service={"minTasks": 5, "maxTasks": 4})
