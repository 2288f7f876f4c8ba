"""The policy pack: the stacks pass every mandatory rule, each rule catches a violating resource, the enforcement
levels per tier are the committed config files, and the pack answers the engine's analyzer protocol."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel

from infra import tiers
from infra.offline import checklist, plan
from infra.policy import levels, rules

ROOT = Path(__file__).resolve().parents[2]
POLICY = {p.name: p for p in rules.POLICIES}


def violations(policy_name: str, resources, change, tier: str | None = None) -> list[str]:
    """Run one rule on the stack's resources after `change(resources)` mutated copies of them, with the rule's
    configuration for `tier` (none by default)."""
    resources = copy.deepcopy(resources)
    change(resources)
    return checklist.violations(POLICY[policy_name], resources, tiers.policy_config(tier, policy_name) if tier
                                else None)


@pytest.fixture(scope="module")
def prod(stacks):
    return checklist.policy_resources(stacks["prod"])


def first(resources, resource_type, where=lambda r: True):
    return next(r for r in resources if r.resource_type == resource_type and where(r))


def set_container(resources, key, value, *, env=None, drop_secret=None):
    task = first(resources, "aws:ecs/taskDefinition:TaskDefinition", lambda r: "portMappings" in r.props[
        "containerDefinitions"])
    (container,) = json.loads(task.props["containerDefinitions"])
    if key:
        container[key] = value
    if env:
        container["environment"] += [{"name": k, "value": v} for k, v in env.items()]
    if drop_secret:
        container["secrets"] = [s for s in container["secrets"] if s["name"] != drop_secret]
    task.props["containerDefinitions"] = json.dumps([container])


def test_every_stack_passes_its_mandatory_rules(stacks):
    for stack, run in stacks.items():
        verdicts = checklist.evaluate(run)
        assert not [str(v) for v in verdicts if v.blocking], stack
    prod = {v.policy: v for v in checklist.evaluate(stacks["prod"])}
    assert all(v.level == EnforcementLevel.MANDATORY for name, v in prod.items() if name != "error-tracking")
    assert prod["error-tracking"].violations  # advisory: no SENTRY_DSN in the stack


BREAKS = {
    "https-only": lambda rs: first(rs, "aws:lb/listener:Listener", lambda r: r.props["port"] == 80).props.update(
        defaultActions=[{"type": "forward", "targetGroupArn": "arn:tg"}]),
    "security-headers": lambda rs: first(rs, "aws:lb/listener:Listener", lambda r: r.props["port"] == 443).props
    .pop("routingHttpResponseStrictTransportSecurityHeaderValue"),
    "debug-off-secret-key-from-a-secret": lambda rs: set_container(rs, None, None, env={"FLASK_DEBUG": "1"},
                                                                   drop_secret="SECRET_KEY"),
    "wsgi-server-behind-a-proxy": lambda rs: first(rs, "aws:ecs/service:Service").props.update(loadBalancers=[]),
    "connection-pooling-within-budget": lambda rs: first(rs, "aws:appautoscaling/target:Target").props.update(
        maxCapacity=500),
    "logs-with-retention": lambda rs: first(rs, "aws:cloudwatch/logGroup:LogGroup").props.pop("retentionInDays"),
    "health-checks": lambda rs: set_container(rs, "healthCheck", None),
    "alarms-present": lambda rs: rs.remove(first(rs, "aws:cloudwatch/metricAlarm:MetricAlarm", lambda r: r.name
                                                 == "monitoring-p99-response")),
    "backups-and-restore-drill": lambda rs: rs.remove(first(rs, "aws:scheduler/schedule:Schedule", lambda r: r.name
                                                            == "backups-drill")),
    "encryption-at-rest": lambda rs: first(rs, "aws:sns/topic:Topic").props.pop("kmsMasterKeyId"),
    "encryption-in-transit": lambda rs: first(rs, "aws:elasticache/replicationGroup:ReplicationGroup").props
    .update(transitEncryptionEnabled=False),
    "nothing-public-in-the-data-tier": lambda rs: first(rs, "aws:rds/instance:Instance").props.update(
        publiclyAccessible=True),
    "deletion-protection-and-multi-az": lambda rs: first(rs, "aws:rds/instance:Instance", lambda r: not r.props.get(
        "replicateSourceDb")).props.update(multiAz=False),
    "no-wildcard-iam": lambda rs: first(rs, "aws:iam/rolePolicy:RolePolicy").props.update(policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})),
    "error-tracking": lambda rs: None,  # already violated: the stack sets no SENTRY_DSN
}


def test_every_rule_has_a_violation_test():
    assert set(BREAKS) == set(POLICY)


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_each_rule_catches_a_violating_resource(prod, name):
    if name != "error-tracking":
        assert violations(name, prod, lambda rs: None) == [], name  # prod as planned passes
    assert violations(name, prod, BREAKS[name]), name


def test_the_policy_config_files_are_the_levels(tmp_path):
    for tier in rules.LEVELS:
        committed = json.loads((ROOT / "infra" / "policy" / f"{tier}.json").read_text())
        assert committed == levels.config(tier), f"run `python -m infra.policy.levels` ({tier})"
    assert levels.config("dev")["deletion-protection-and-multi-az"]["enforcementLevel"] == "disabled"


def test_the_plan_prints_the_checklist_and_fails_on_a_mandatory_violation(cached_runs, monkeypatch, capsys):
    assert plan.main(["--stack", "prod"]) == 0
    out = capsys.readouterr().out
    assert "Deployment checklist (policy pack infra/policy): 15 rules, 0 mandatory violated" in out
    monkeypatch.setitem(rules.LEVELS["prod"], "error-tracking", EnforcementLevel.MANDATORY)
    assert plan.main(["--stack", "prod"]) == 1
    assert "FAIL  error-tracking (mandatory)" in capsys.readouterr().out
    assert plan.main(["--stack", "prod", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)["checklist"]
    assert {"policy": "error-tracking", "level": "mandatory"}.items() <= report[-1].items()


def test_the_pack_speaks_the_analyzer_protocol():
    """What `pulumi preview --policy-pack infra/policy` starts: the pack serves the engine's analyzer gRPC API."""
    pack = subprocess.Popen([sys.executable, str(ROOT / "infra" / "policy" / "__main__.py")], cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = pack.stdout.readline().decode().strip()
        assert port.isdigit(), pack.stderr.read().decode() if pack.poll() is not None else port
        stub = analyzer_pb2_grpc.AnalyzerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
        assert info.name == "flask-aws-checklist" and {p.name for p in info.policies} == set(POLICY)
        props = struct_pb2.Struct()
        props.update({"protocol": "HTTP", "port": 80, "defaultActions": [{"type": "forward"}]})
        answer = stub.Analyze(analyzer_pb2.AnalyzeRequest(
            type="aws:lb/listener:Listener", properties=props, name="http",
            urn="urn:pulumi:prod::flask-aws::aws:lb/listener:Listener::http"), timeout=10)
        assert [d.policyName for d in answer.diagnostics] == ["https-only"]
        assert "serves plain HTTP" in answer.diagnostics[0].message
    finally:
        pack.kill()
        pack.wait()


def test_the_rules_close_the_gaps_a_review_found(prod):
    """World ingress on 443 of a database's group, an alarm topic nobody reads, an app container without APP_ENV."""
    def world_on_the_database(rs):
        rule = first(rs, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                     lambda r: r.name == "database-from-app")
        rule.props.update(cidrIpv4="0.0.0.0/0", fromPort=443, toPort=443, referencedSecurityGroupId=None)
    assert violations("nothing-public-in-the-data-tier", prod, world_on_the_database)
    assert violations("alarms-present", prod, lambda rs: [rs.remove(r) for r in list(rs)
                                                          if r.resource_type == "aws:sns/topicSubscription:"
                                                          "TopicSubscription"]) == [
        "the alarm topic has no subscriber: set monitoring.alarmEmails"]

    def no_app_env(rs):
        task = first(rs, "aws:ecs/taskDefinition:TaskDefinition", lambda r: r.name == "service-task")
        (container,) = json.loads(task.props["containerDefinitions"])
        container["environment"] = [e for e in container["environment"] if e["name"] != "APP_ENV"]
        task.props["containerDefinitions"] = json.dumps([container])
    assert any("APP_ENV=(unset: development)" in v
               for v in violations("debug-off-secret-key-from-a-secret", prod, no_app_env))


def test_the_backup_rule_holds_what_the_tier_requires(prod):
    """prod's requirements, in the rule's configuration: a week of automated backups, snapshots, their copy."""
    def primary(rs):
        return first(rs, "aws:rds/instance:Instance", lambda r: not r.props.get("replicateSourceDb"))

    assert violations("backups-and-restore-drill", prod, lambda rs: None, tier="prod") == []
    five_days = lambda rs: primary(rs).props.update(backupRetentionPeriod=5)  # noqa: E731
    assert violations("backups-and-restore-drill", prod, five_days, tier="prod") == [
        "database flask-aws-prod-db keeps automated backups 5 days; this tier keeps at least 7"]
    assert violations("backups-and-restore-drill", prod, five_days, tier="staging") == []
    no_snapshots = lambda rs: rs.remove(first(rs, "aws:backup/selection:Selection"))  # noqa: E731
    assert violations("backups-and-restore-drill", prod, no_snapshots, tier="prod") == [
        "no AWS Backup plan takes snapshots of the database"]
    assert violations("backups-and-restore-drill", prod, no_snapshots, tier="staging") == []

    def no_copy(rs):
        plan = first(rs, "aws:backup/plan:Plan")
        plan.props["rules"] = [{**rule, "copyActions": []} for rule in plan.props["rules"]]
    assert violations("backups-and-restore-drill", prod, no_copy, tier="prod") == [
        "no AWS Backup rule copies the snapshots to a vault in a second region"]
    assert violations("backups-and-restore-drill", prod, no_copy, tier="staging") == []
