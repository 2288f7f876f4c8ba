"""Monitoring component: the alarm topic, the alarms (valid PutMetricAlarm calls, thresholds from settings, every
instance and node covered), failed backup jobs as events, the dashboard, and the deployment alarms ECS uses."""

import json

import pytest

from infra import sizing
from infra.components.monitoring import DEPLOYMENT_ALARMS, failed_job_pattern, failed_rotation_pattern
from infra.offline import harness
from tests.infra.checks import metric_alarm_problems

ALL = {"http-5xx", "p99-response", "unhealthy-targets", "task-cpu", "task-memory", "running-tasks", "database-cpu",
       "database-free-storage", "database-connections", "cache-cpu", "cache-memory", "cache-evictions",
       "replica-lag", "backup-failed", "rotation-failed", "firewall-blocked"}


def alarms(run) -> dict:
    return {a.inputs["name"].removeprefix(f"flask-aws-{run.stack}-"): a.inputs
            for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}


def test_every_alarm_is_a_valid_put_metric_alarm_call_to_the_encrypted_topic(stacks):
    for stack, run in stacks.items():
        topic = run.one("aws:sns/topic:Topic")
        assert topic.inputs["kmsMasterKeyId"] == run.named("keys-logs", "aws:kms/key:Key").outputs["arn"]
        for concern, alarm in alarms(run).items():
            assert metric_alarm_problems(alarm) == "", (stack, concern)
            assert alarm["alarmActions"] == alarm["okActions"] == [topic.outputs["arn"]]


def test_a_broken_alarm_is_caught_by_the_model_check(stacks):
    alarm = dict(alarms(stacks["prod"])["http-5xx"])
    alarm["comparisonOperator"] = "MoreThan"
    alarm["treatMissingData"] = "whatever"
    report = metric_alarm_problems(alarm)
    assert "'MoreThan' is not one of" in report


def test_prod_watches_every_concern_and_dev_what_it_has(stacks):
    assert set(alarms(stacks["prod"])) == ALL
    assert set(alarms(stacks["staging"])) == ALL
    assert set(alarms(stacks["dev"])) == ALL - {"replica-lag"}  # dev has no replica


def test_multi_instance_concerns_cover_every_instance_and_node(stacks):
    prod = alarms(stacks["prod"])
    instances = {q["metric"]["dimensions"]["DBInstanceIdentifier"] for q in prod["database-cpu"]["metricQueries"]
                 if "metric" in q}
    assert instances == {"flask-aws-prod-db", "flask-aws-prod-db-replica-1", "flask-aws-prod-db-replica-2"}
    assert prod["database-cpu"]["metricQueries"][-1]["expression"] == "MAX([m1, m2, m3])"
    assert prod["database-free-storage"]["metricQueries"][-1]["expression"] == "MIN([m1, m2, m3])"
    nodes = {q["metric"]["dimensions"]["CacheClusterId"] for q in prod["cache-cpu"]["metricQueries"] if "metric" in q}
    # ElastiCache names a replication group's nodes <group id>-001, -002, ...
    assert nodes == {"flask-aws-prod-redis-001", "flask-aws-prod-redis-002", "flask-aws-prod-redis-003"}
    lag = {q["metric"]["dimensions"]["DBInstanceIdentifier"] for q in prod["replica-lag"]["metricQueries"]
           if "metric" in q}
    assert lag == {"flask-aws-prod-db-replica-1", "flask-aws-prod-db-replica-2"}


def test_thresholds_come_from_settings_and_the_connection_budget():
    run = harness.run_stack("prod", overrides={"monitoring": {"http5xxPercent": 3, "p99ResponseMs": 750,
                                                              "alarmEmails": ["ops@example.com", "db@example.com"]}})
    prod = alarms(run)
    assert prod["http-5xx"]["threshold"] == 3 and prod["p99-response"]["threshold"] == 0.75
    # db.r6g.large: 16 GiB -> max_connections 1586 (infra/sizing.py, RDS's formula); 80 % of it.
    assert sizing.max_connections("db.r6g.large") == 1586 and prod["database-connections"]["threshold"] == 1268
    assert prod["database-free-storage"]["threshold"] == 100 * 1024 ** 3 * 5 / 100  # 5 % of 100 GiB
    assert prod["running-tasks"]["threshold"] == 3 and prod["running-tasks"]["treatMissingData"] == "breaching"
    assert sorted(s.inputs["endpoint"] for s in run.of_type("aws:sns/topicSubscription:TopicSubscription")) == \
        ["db@example.com", "ops@example.com"]


def test_a_bad_alarm_email_is_a_settings_problem():
    import pulumi

    with pytest.raises(pulumi.RunError, match="monitoring.alarmEmails.*not an email address: ops-at-example"):
        harness.run_stack("dev", overrides={"monitoring": {"alarmEmails": ["ops-at-example"]}})


def test_deployments_roll_back_on_the_5xx_and_latency_alarms(stacks):
    for run in stacks.values():
        service = run.one("aws:ecs/service:Service")
        assert service.inputs["alarms"]["enable"] is True and service.inputs["alarms"]["rollback"] is True
        assert service.inputs["alarms"]["alarmNames"] == [f"flask-aws-{run.stack}-http-5xx",
                                                          f"flask-aws-{run.stack}-p99-response"]
        # the alarms exist before ECS is told about them, and watch this very service
        cpu = alarms(run)["task-cpu"]["metricQueries"][0]["metric"]["dimensions"]
        assert cpu == {"ClusterName": run.outputs["clusterName"], "ServiceName": run.outputs["serviceName"]}


def test_the_topic_takes_alarms_and_the_backup_job_rule_and_the_key_lets_them(stacks):
    run = stacks["prod"]
    document = json.loads(run.one("aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    rules = [r.outputs["arn"] for r in run.of_type("aws:cloudwatch/eventRule:EventRule")]
    assert sorted(by_sid["FailureEventsPublish"]["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(rules)
    assert by_sid["AlarmsPublish"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert by_sid["DenyInsecureTransport"]["Effect"] == "Deny"
    key_policy = {s["Sid"]: s for s in json.loads(run.named("keys-logs", "aws:kms/key:Key").inputs["policy"])[
        "Statement"]}
    alarms_grant, events_grant = key_policy["AlarmsPublishToTheEncryptedTopic"], key_policy[
        "EventsPublishToTheEncryptedTopic"]
    assert alarms_grant["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms_grant["Condition"] == {"StringEquals": {"aws:SourceAccount": harness.ACCOUNT}}
    # SNS: a source condition on this grant is not supported for EventBridge's delivery to an encrypted topic.
    assert events_grant["Principal"] == {"Service": "events.amazonaws.com"} and "Condition" not in events_grant
    for target in run.of_type("aws:cloudwatch/eventTarget:EventTarget"):
        assert target.inputs["arn"] == run.one("aws:sns/topic:Topic").outputs["arn"]


def test_the_failed_job_rule_watches_the_backup_families_for_a_non_zero_exit(stacks, dev_without_backups):
    """The fields of ECS's "Task State Change" event (detail.group is "family:<family>", detail.containers[] carry
    exitCode). Offline there is no EventBridge matcher to run it against (moto's does not match inside arrays of
    objects), so the shape is asserted."""
    run = stacks["prod"]
    pattern = json.loads(run.named("monitoring-failed-backup-jobs", "aws:cloudwatch/eventRule:EventRule")
                         .inputs["eventPattern"])
    cluster = run.one("aws:ecs/cluster:Cluster").outputs["arn"]
    assert pattern == failed_job_pattern(cluster, ["flask-aws-prod-backup", "flask-aws-prod-drill"])
    assert pattern["detail"]["group"] == ["family:flask-aws-prod-backup", "family:flask-aws-prod-drill"]
    assert pattern["detail"]["$or"] == [{"containers": {"exitCode": [{"anything-but": 0}]}},
                                        {"stopCode": ["TaskFailedToStart"]}]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"] and pattern["detail-type"] == ["ECS Task State Change"]
    # No jobs and no AWS Backup in dev: the one rule left is the rotations'.
    assert [r.name for r in dev_without_backups.of_type("aws:cloudwatch/eventRule:EventRule")] == [
        "monitoring-failed-rotations"]


def test_failed_backups_are_also_an_alarm_state(stacks):
    """AWS/Events TriggeredRules of the failure rules: the events reach the topic, the alarm shows the state."""
    for run in stacks.values():
        alarm = alarms(run)["backup-failed"]
        rules = {q["metric"]["dimensions"]["RuleName"] for q in alarm["metricQueries"] if "metric" in q}
        assert rules == {r.inputs["name"] for r in run.of_type("aws:cloudwatch/eventRule:EventRule")} - {
            f"flask-aws-{run.stack}-failed-rotations"}
    assert alarms(stacks["prod"])["backup-failed"]["metricQueries"][-1]["expression"] == "MAX([m1, m2])"


def test_failed_aws_backup_jobs_and_copies_reach_the_topic(stacks):
    run = stacks["prod"]
    rule = run.named("monitoring-failed-aws-backup-jobs", "aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["source"] == ["aws.backup"] and "Copy Job State Change" in pattern["detail-type"]
    assert pattern["detail"]["state"] == ["FAILED", "ABORTED", "EXPIRED"]
    vaults = [v.outputs["name"] for v in run.of_type("aws:backup/vault:Vault")]
    assert sorted(pattern["detail"]["$or"][0]["backupVaultName"]) == sorted(vaults)


def test_the_dashboard_shows_every_alarm(stacks):
    run = stacks["prod"]
    body = json.loads(run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    arns = {a.outputs["arn"] for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(body["widgets"][0]["properties"]["alarms"]) == arns
    assert {w["properties"]["annotations"]["alarms"][0] for w in body["widgets"][1:]} == arns


def test_a_failed_rotation_reaches_the_topic_and_is_an_alarm_state(stacks):
    """Secrets Manager's RotationFailed event for each of the stack's rotated secrets goes to the topic (naming the
    secret); an error of any rotation function is an alarm (on the dashboard, and needing no CloudTrail event)."""
    for run in stacks.values():
        rule = run.named("monitoring-failed-rotations", "aws:cloudwatch/eventRule:EventRule")
        pattern = json.loads(rule.inputs["eventPattern"])
        rotated = [r.inputs["secretId"] for r in run.of_type("aws:secretsmanager/secretRotation:SecretRotation")]
        assert len(rotated) == 6
        ids = pattern["detail"]["additionalEventData"]["SecretId"]
        assert sorted(ids) == sorted(rotated) and pattern == failed_rotation_pattern(ids)
        assert pattern["detail"]["eventName"] == ["RotationFailed"]
        alarm = alarms(run)["rotation-failed"]
        functions = {q["metric"]["dimensions"]["FunctionName"] for q in alarm["metricQueries"] if "metric" in q}
        deployed = {f.inputs["name"] for f in run.of_type("aws:lambda/function:Function")} | {
            a.inputs["parameters"]["functionName"]
            for a in run.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")}
        assert functions == deployed and len(functions) == 3
        assert alarm["metricQueries"][-1]["expression"] == "MAX([m1, m2, m3])"


def test_the_firewall_blocking_alarm_watches_the_share_of_requests_it_blocked(stacks):
    """AWS WAF's metrics for the whole web ACL (Rule ALL) in the stack's region: blocked over blocked + allowed."""
    alarm = alarms(stacks["prod"])["firewall-blocked"]
    metrics = [q["metric"] for q in alarm["metricQueries"] if "metric" in q]
    assert [(m["namespace"], m["metricName"]) for m in metrics] == [("AWS/WAFV2", "BlockedRequests"),
                                                                    ("AWS/WAFV2", "AllowedRequests")]
    assert all(m["dimensions"] == {"WebACL": "flask-aws-prod-web-acl", "Region": "eu-west-1", "Rule": "ALL"}
               for m in metrics)
    assert alarm["threshold"] == 10 and "firewall-blocked" not in DEPLOYMENT_ALARMS
