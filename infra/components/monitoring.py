"""Alarms on the serving path and the data tier, failed backups as events, to an encrypted SNS topic, and a
dashboard of the alarms.

The alarms are data (`alarm_specs`): one per concern, metric math across instances or nodes where a concern spans
several (the busiest node's CPU, the fullest disk), so adding a replica changes a query, not the alarm count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components import AwsContext, policy, type_token
from infra.settings import MonitoringSettings

GiB = 1024 ** 3
# Gunicorn's and the load balancer's errors: the alarms ECS watches during a deployment to roll it back.
DEPLOYMENT_ALARMS = ("http-5xx", "p99-response")


def alarm_name(name_prefix: str, concern: str) -> str:
    return f"{name_prefix}-{concern}"


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    stat: str
    dimensions: dict[str, pulumi.Input[str]]


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: metrics m1..mN, an optional expression over them, a threshold and when it fires (3 of 5
    one-minute periods unless said otherwise)."""

    concern: str
    description: str
    metrics: list[Metric]
    comparison: str
    threshold: float
    expression: str | None = None
    missing: str = "notBreaching"
    period: int = 60
    evaluation_periods: int = 5
    datapoints: int = 3
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Watched:
    """What the alarms look at: names and identifiers from the rest of the stack."""

    lb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    min_tasks: int
    database_ids: list[pulumi.Input[str]]
    replica_ids: list[pulumi.Input[str]]
    allocated_storage_gib: int
    max_connections: int  # of the smallest class among the database instances
    cache_node_ids: list[str]
    backup_vaults: list[pulumi.Input[str]] = field(default_factory=list)  # AWS Backup: failed jobs are events
    backup_task_families: list[str] = field(default_factory=list)
    rotated_secrets: list[pulumi.Input[str]] = field(default_factory=list)  # a failed rotation is an event
    rotation_functions: list[str] = field(default_factory=list)  # and an error of the function that ran it
    web_acl_name: str | None = None  # AWS WAF in front of the load balancer
    region: str = ""  # AWS WAF's metrics are dimensioned by region


def _max(prefix: str, count: int, fn: str = "MAX") -> str:
    return f"{fn}([{', '.join(f'{prefix}{i + 1}' for i in range(count))}])"


def alarm_specs(s: MonitoringSettings, w: Watched, failure_rules: list[str] = ()) -> list[AlarmSpec]:
    lb = {"LoadBalancer": w.lb_arn_suffix}
    target = {"LoadBalancer": w.lb_arn_suffix, "TargetGroup": w.target_group_arn_suffix}
    service = {"ClusterName": w.cluster_name, "ServiceName": w.service_name}
    every_db = [{"DBInstanceIdentifier": i} for i in w.database_ids]
    nodes = [{"CacheClusterId": i} for i in w.cache_node_ids]

    def per(namespace, name, stat, dimensions):
        return [Metric(namespace, name, stat, d) for d in dimensions]

    specs = [
        AlarmSpec("http-5xx", f"5xx answers above {s.http_5xx_percent} % of requests",
                  [Metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", lb),
                   Metric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "Sum", lb),
                   Metric("AWS/ApplicationELB", "RequestCount", "Sum", lb)],
                  "GreaterThanThreshold", s.http_5xx_percent,
                  expression="IF(m3 > 0, 100 * (FILL(m1, 0) + FILL(m2, 0)) / m3, 0)"),
        AlarmSpec("p99-response", f"p99 target response time above {s.p99_response_ms} ms",
                  [Metric("AWS/ApplicationELB", "TargetResponseTime", "p99", target)],
                  "GreaterThanThreshold", s.p99_response_ms / 1000),
        AlarmSpec("unhealthy-targets", "a target failing the load balancer's health check",
                  [Metric("AWS/ApplicationELB", "UnHealthyHostCount", "Maximum", target)],
                  "GreaterThanThreshold", 0),
        AlarmSpec("task-cpu", f"service CPU above {s.task_cpu_percent} %",
                  [Metric("AWS/ECS", "CPUUtilization", "Average", service)], "GreaterThanThreshold",
                  s.task_cpu_percent),
        AlarmSpec("task-memory", f"service memory above {s.task_memory_percent} %",
                  [Metric("AWS/ECS", "MemoryUtilization", "Average", service)], "GreaterThanThreshold",
                  s.task_memory_percent),
        # Container Insights (on for the cluster); no data means no tasks report: that is the failure.
        AlarmSpec("running-tasks", f"fewer running tasks than the minimum ({w.min_tasks})",
                  [Metric("ECS/ContainerInsights", "RunningTaskCount", "Minimum", service)],
                  "LessThanThreshold", w.min_tasks, missing="breaching"),
        AlarmSpec("database-cpu", f"a database instance's CPU above {s.database_cpu_percent} %",
                  per("AWS/RDS", "CPUUtilization", "Average", every_db), "GreaterThanThreshold",
                  s.database_cpu_percent, expression=_max("m", len(every_db))),
        AlarmSpec("database-free-storage", f"a database instance's free storage below "
                  f"{s.database_free_storage_percent} % of {w.allocated_storage_gib} GiB",
                  per("AWS/RDS", "FreeStorageSpace", "Minimum", every_db), "LessThanThreshold",
                  w.allocated_storage_gib * GiB * s.database_free_storage_percent / 100,
                  expression=_max("m", len(every_db), "MIN")),
        AlarmSpec("database-connections", f"a database instance above {s.database_connections_percent} % of "
                  f"max_connections ({w.max_connections}): beyond the connection budget",
                  per("AWS/RDS", "DatabaseConnections", "Maximum", every_db), "GreaterThanThreshold",
                  w.max_connections * s.database_connections_percent // 100,
                  expression=_max("m", len(every_db))),
        AlarmSpec("cache-cpu", f"a Redis node's engine CPU above {s.cache_cpu_percent} %",
                  per("AWS/ElastiCache", "EngineCPUUtilization", "Average", nodes), "GreaterThanThreshold",
                  s.cache_cpu_percent, expression=_max("m", len(nodes))),
        AlarmSpec("cache-memory", f"a Redis node's memory above {s.cache_memory_percent} %",
                  per("AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "Maximum", nodes),
                  "GreaterThanThreshold", s.cache_memory_percent, expression=_max("m", len(nodes))),
        AlarmSpec("cache-evictions", f"more than {s.cache_evictions} keys evicted in 5 minutes on a node",
                  per("AWS/ElastiCache", "Evictions", "Sum", nodes), "GreaterThanThreshold", s.cache_evictions,
                  expression=_max("m", len(nodes)), period=300, evaluation_periods=1, datapoints=1),
    ]
    if w.replica_ids:
        specs.append(AlarmSpec(
            "replica-lag", f"the slowest replica more than {s.replica_lag_seconds} s behind",
            per("AWS/RDS", "ReplicaLag", "Maximum", [{"DBInstanceIdentifier": i} for i in w.replica_ids]),
            "GreaterThanThreshold", s.replica_lag_seconds, expression=_max("m", len(w.replica_ids))))
    if w.web_acl_name:
        acl = {"WebACL": w.web_acl_name, "Region": w.region, "Rule": "ALL"}
        specs.append(AlarmSpec(
            "firewall-blocked", f"the firewall blocking more than {s.firewall_blocked_percent} % of requests (an "
            "attack, or a rule blocking legitimate requests: its log says which)",
            [Metric("AWS/WAFV2", "BlockedRequests", "Sum", acl), Metric("AWS/WAFV2", "AllowedRequests", "Sum", acl)],
            "GreaterThanThreshold", s.firewall_blocked_percent,
            expression="IF(FILL(m1, 0) + FILL(m2, 0) > 0, 100 * FILL(m1, 0) / (FILL(m1, 0) + FILL(m2, 0)), 0)"))
    if failure_rules:
        # The failure events themselves go to the topic; this alarm makes them a state on the dashboard too.
        specs.append(AlarmSpec(
            "backup-failed", "a backup, drill, AWS Backup job or snapshot copy failed (see the topic's message)",
            [Metric("AWS/Events", "TriggeredRules", "Sum", {"RuleName": rule}) for rule in failure_rules],
            "GreaterThanOrEqualToThreshold", 1, expression=_max("m", len(failure_rules)) if len(failure_rules) > 1
            else None, period=300, evaluation_periods=1, datapoints=1))
    if w.rotation_functions:
        functions = [{"FunctionName": f} for f in w.rotation_functions]
        specs.append(AlarmSpec(
            "rotation-failed", "a credential rotation function failed (the topic's message names the secret)",
            per("AWS/Lambda", "Errors", "Sum", functions), "GreaterThanOrEqualToThreshold", 1,
            expression=_max("m", len(functions)), period=300, evaluation_periods=1, datapoints=1))
    return specs


def metric_queries(spec: AlarmSpec) -> list[dict]:
    queries = [{"id": f"m{i + 1}", "return_data": spec.expression is None,
                "metric": {"namespace": m.namespace, "metric_name": m.name, "stat": m.stat, "period": spec.period,
                           "dimensions": m.dimensions}}
               for i, m in enumerate(spec.metrics)]
    if spec.expression:
        queries.append({"id": "e1", "expression": spec.expression, "label": spec.concern, "return_data": True})
    return queries


def topic_policy(context: AwsContext, topic_arn: str, rule_arns: list[str]) -> dict:
    """The account manages the topic; CloudWatch alarms of this account and these EventBridge rules publish; only
    over TLS."""
    statements = [
        {"Sid": "AccountManagesTheTopic", "Effect": "Allow", "Principal": {"AWS": context.root_principal},
         "Action": ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:ListSubscriptionsByTopic",
                    "sns:Publish"], "Resource": topic_arn},
        {"Sid": "AlarmsPublish", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": {"StringEquals": {"aws:SourceAccount": context.account_id}}},
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
         "Resource": topic_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]
    if rule_arns:
        statements.insert(2, {"Sid": "FailureEventsPublish", "Effect": "Allow",
                              "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish",
                              "Resource": topic_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}}})
    return policy(*statements)


def failed_job_pattern(cluster_arn: str, families: list[str]) -> dict:
    """A backup or drill task that stopped with a non-zero exit code, or never started (no exit code then)."""
    return {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"],
            "detail": {"clusterArn": [cluster_arn], "lastStatus": ["STOPPED"],
                       "group": [f"family:{family}" for family in families],
                       "$or": [{"containers": {"exitCode": [{"anything-but": 0}]}},
                               {"stopCode": ["TaskFailedToStart"]}]}}


def failed_aws_backup_pattern(vaults: list[str]) -> dict:
    """An AWS Backup job or copy job into these vaults that failed, was aborted or expired unstarted (AWS Backup
    reports job states as events; its CloudWatch job metrics need dimensions that vary by resource type)."""
    return {"source": ["aws.backup"], "detail-type": ["Backup Job State Change", "Copy Job State Change"],
            "detail": {"state": ["FAILED", "ABORTED", "EXPIRED"],
                       "$or": [{"backupVaultName": vaults}, {"destinationBackupVaultArn": [{"wildcard": f"*:{v}"}
                                                                                           for v in vaults]}]}}


def failed_rotation_pattern(secret_arns: list[str]) -> dict:
    """Secrets Manager's RotationFailed event (a CloudTrail service event, which EventBridge receives) for these
    secrets."""
    return {"source": ["aws.secretsmanager"], "detail-type": ["AWS Service Event via CloudTrail"],
            "detail": {"eventSource": ["secretsmanager.amazonaws.com"], "eventName": ["RotationFailed"],
                       "additionalEventData": {"SecretId": secret_arns}}}


def dashboard(region: str, alarm_arns: list[str]) -> dict:
    """The alarms' state at the top, then each alarm's metric with its threshold."""
    widgets = [{"type": "alarm", "x": 0, "y": 0, "width": 24, "height": 4,
                "properties": {"title": "Alarms", "alarms": alarm_arns}}]
    for i, arn in enumerate(alarm_arns):
        widgets.append({"type": "metric", "x": (i % 3) * 8, "y": 4 + (i // 3) * 6, "width": 8, "height": 6,
                        "properties": {"title": arn.rsplit(":", 1)[-1], "region": region,
                                       "annotations": {"alarms": [arn]}, "view": "timeSeries"}})
    return {"widgets": widgets}


class Monitoring(pulumi.ComponentResource):
    """An SNS topic (the logs key) mailing settings' addresses, the alarms, failed backup jobs as events, and a
    dashboard."""

    def __init__(self, name: str, settings: MonitoringSettings, watched: Watched, *, context: AwsContext,
                 name_prefix: str, logs_key_arn: pulumi.Input[str], cluster_arn: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("monitoring", "Monitoring"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.topic = aws.sns.Topic(f"{name}-alarms", name=f"{name_prefix}-alarms", kms_master_key_id=logs_key_arn,
                                   opts=child)
        topic_child = pulumi.ResourceOptions(parent=self.topic)
        for i, address in enumerate(settings.alarm_emails):
            aws.sns.TopicSubscription(f"{name}-email-{i + 1}", topic=self.topic.arn, protocol="email",
                                      endpoint=address, opts=topic_child)

        rules = []
        events = []
        if watched.backup_task_families:
            events.append(("failed-backup-jobs", "a backup or drill task failed or could not start",
                           pulumi.Output.from_input(cluster_arn).apply(
                               lambda arn: json.dumps(failed_job_pattern(arn, watched.backup_task_families)))))
        if watched.backup_vaults:
            events.append(("failed-aws-backup-jobs", "an AWS Backup job or copy of the database failed",
                           pulumi.Output.all(*watched.backup_vaults).apply(
                               lambda vaults: json.dumps(failed_aws_backup_pattern(list(vaults))))))
        backup_events = [concern for concern, *_ in events]
        if watched.rotated_secrets:
            events.append(("failed-rotations", "a credential rotation failed",
                           pulumi.Output.all(*watched.rotated_secrets).apply(
                               lambda arns: json.dumps(failed_rotation_pattern(list(arns))))))
        for concern, description, pattern in events:
            rule = aws.cloudwatch.EventRule(f"{name}-{concern}", name=f"{name_prefix}-{concern}",
                                            description=description, event_pattern=pattern, opts=child)
            aws.cloudwatch.EventTarget(f"{name}-{concern}", rule=rule.name, arn=self.topic.arn,
                                       opts=pulumi.ResourceOptions(parent=rule))
            rules.append(rule.arn)
        aws.sns.TopicPolicy(f"{name}-alarms", arn=self.topic.arn, policy=pulumi.Output.all(self.topic.arn, *rules)
                            .apply(lambda arns: json.dumps(topic_policy(context, arns[0], arns[1:]))),
                            opts=topic_child)

        self.alarms = {}
        failure_rules = [f"{name_prefix}-{concern}" for concern in backup_events]
        for spec in alarm_specs(settings, watched, failure_rules):
            self.alarms[spec.concern] = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.concern}",
                name=alarm_name(name_prefix, spec.concern),
                alarm_description=spec.description,
                comparison_operator=spec.comparison,
                threshold=spec.threshold,
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.datapoints,
                treat_missing_data=spec.missing,
                metric_queries=metric_queries(spec),
                alarm_actions=[self.topic.arn],
                ok_actions=[self.topic.arn],
                opts=child)

        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=name_prefix,
            dashboard_body=pulumi.Output.all(*(a.arn for a in self.alarms.values())).apply(
                lambda arns: json.dumps(dashboard(context.region, list(arns)))),
            opts=child)

        self.deployment_alarms = [self.alarms[concern] for concern in DEPLOYMENT_ALARMS]
        self.topic_arn = self.topic.arn
        self.register_outputs({"topic_arn": self.topic_arn, "alarms": list(self.alarms)})
