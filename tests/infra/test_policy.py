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


def set_container(resources, key, value, *, env=None, drop_env=(), secrets=None):
    """Change the serving container of the service's task (the one with a port)."""
    task = first(resources, "aws:ecs/taskDefinition:TaskDefinition", lambda r: "portMappings" in r.props[
        "containerDefinitions"])
    definitions = json.loads(task.props["containerDefinitions"])
    container = next(c for c in definitions if c.get("portMappings"))
    if key:
        container[key] = value
    container["environment"] = [e for e in container["environment"] if e["name"] not in drop_env]
    container["environment"] += [{"name": k, "value": v} for k, v in (env or {}).items()]
    container["secrets"] += [{"name": k, "valueFrom": v} for k, v in (secrets or {}).items()]
    task.props["containerDefinitions"] = json.dumps(definitions)


def login_arn(resources, kind: str) -> str:
    return first(resources, "aws:secretsmanager/secret:Secret",
                 lambda r: (r.props.get("tags") or {}).get("DatabaseLogin") == kind).props["arn"]


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
                                                                   drop_env=["SECRET_KEY_SECRET_ARN"]),
    "api-rate-limits": lambda rs: set_container(rs, None, None, env={"RATE_LIMITS_ENABLED": "false"},
                                                drop_env=["RATE_LIMIT_WRITES"]),
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
    "database-credentials-least-privilege": lambda rs: set_container(rs, None, None, secrets={
        "DATABASE_PASSWORD": login_arn(rs, "master") + ":password::"}),
    "secrets-rotated": lambda rs: rs.remove(first(rs, "aws:secretsmanager/secretRotation:SecretRotation",
                                                  lambda r: r.name == "rotation-runtime")),
    "tls-verified": lambda rs: set_container(rs, None, None, drop_env=["DATABASE_SSLMODE"],
                                             env={"DATABASE_SSLMODE": "require"}),
    "waf-on-public-load-balancer": lambda rs: rs.remove(first(rs, "aws:wafv2/webAclAssociation:WebAclAssociation")),
    "narrow-egress": lambda rs: first(rs, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
                                      lambda r: r.name == "network-app-https").props.update(ipProtocol="-1"),
    "endpoint-policies": lambda rs: rs.remove(first(rs, "aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy")),
    "scoped-trust-policies": lambda rs: first(rs, "aws:iam/role:Role", lambda r: r.name == "service-task").props
    .update(assumeRolePolicy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})),
    "explicit-key-policies": lambda rs: first(rs, "aws:kms/key:Key", lambda r: r.name == "keys-secrets").props
    .update(policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*",
        "Resource": "*"}]})),
    "immutable-backups": lambda rs: rs.remove(first(
        rs, "aws:backup/vaultLockConfiguration:VaultLockConfiguration")),
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
    assert "Deployment checklist (policy pack infra/policy): 25 rules, 0 mandatory violated" in out
    monkeypatch.setitem(rules.LEVELS["prod"], "error-tracking", EnforcementLevel.MANDATORY)
    assert plan.main(["--stack", "prod"]) == 1
    assert "FAIL  error-tracking (mandatory)" in capsys.readouterr().out
    assert plan.main(["--stack", "prod", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)["checklist"]
    (tracking,) = [r for r in report if r["policy"] == "error-tracking"]
    assert tracking["level"] == "mandatory" and tracking["violations"]


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

    assert any("APP_ENV=(unset: development)" in v
               for v in violations("debug-off-secret-key-from-a-secret", prod,
                                   lambda rs: set_container(rs, None, None, drop_env=["APP_ENV"])))


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


def test_no_serving_container_gets_or_may_read_the_master_or_owner_login(prod):
    """Every way the web task could hold a privileged login: injected, by the migration step's variable names,
    pointed at by DATABASE_SECRET_ARN, named as DATABASE_USER, or readable by its task role."""
    rule = "database-credentials-least-privilege"
    owner = login_arn(prod, "owner")
    assert violations(rule, prod, lambda rs: set_container(rs, None, None, env={"DATABASE_MASTER_USER": "x"}))
    assert violations(rule, prod, lambda rs: set_container(rs, None, None, drop_env=["DATABASE_SECRET_ARN"],
                                                           env={"DATABASE_SECRET_ARN": owner}))
    assert violations(rule, prod, lambda rs: set_container(rs, None, None, env={"DATABASE_USER": "app_admin"}))
    assert violations(rule, prod, lambda rs: set_container(rs, None, None, env={"DATABASE_USER": "app_owner"}))

    def task_role_reads(resource, action="secretsmanager:GetSecretValue"):
        def change(rs):
            grant = first(rs, "aws:iam/rolePolicy:RolePolicy", lambda r: r.name == "service-task-secrets")
            document = json.loads(grant.props["policy"])
            document["Statement"][0]["Resource"].append(resource)
            document["Statement"][0]["Action"] = action
            grant.props["policy"] = json.dumps(document)
        return change
    assert violations(rule, prod, task_role_reads(owner)) == [
        f"task flask-aws-prod-app: its task role may read {owner} (the master or owner login)"]
    # Wildcards in the resource or the action reach them too.
    prefix = owner.rsplit(":", 1)[0]  # arn:aws:secretsmanager:<region>:<account>:secret
    assert len(violations(rule, prod, task_role_reads(f"{prefix}:flask-aws-prod/*"))) == 1
    assert violations(rule, prod, task_role_reads(owner, "secretsmanager:Get*"))
    assert violations(rule, prod, task_role_reads(owner, "secretsmanager:List*")) == []
    # The migration container holds them by design: it serves nothing.
    migrate = [c for c in json.loads(first(prod, "aws:ecs/taskDefinition:TaskDefinition", lambda r: r.name ==
                                           "service-task").props["containerDefinitions"]) if c["name"] == "migrate"]
    assert login_arn(prod, "master") in json.dumps(migrate) and violations(rule, prod, lambda rs: None) == []


def test_every_secret_declares_its_rotation_and_a_login_rotates_on_a_schedule(prod):
    rule = "secrets-rotated"

    def tag(kind, value):
        def change(rs):
            secret = first(rs, "aws:secretsmanager/secret:Secret",
                           lambda r: (r.props.get("tags") or {}).get("DatabaseLogin") == kind)
            secret.props["tags"] = {**secret.props["tags"], "Rotation": value}
        return change
    assert violations(rule, prod, tag("owner", "runbook")) == [
        "secret database-logins-owner: rotation runbook; a database login rotates on a schedule, any other secret "
        "says how (tag Rotation: scheduled or runbook)"]

    def no_schedule(rs):
        rotation = first(rs, "aws:secretsmanager/secretRotation:SecretRotation", lambda r: r.name == "rotation-master")
        rotation.props["rotationRules"] = {}
    assert violations(rule, prod, no_schedule) == ["secret database-logins-master: its rotation has no function or "
                                                   "no schedule"]
    untagged = lambda rs: first(rs, "aws:secretsmanager/secret:Secret", lambda r: r.name == "secrets-redis-auth-token"  # noqa: E731
                                ).props.update(tags={})
    assert violations(rule, prod, untagged)


def test_tls_is_verified_as_the_tier_requires(prod):
    rule = "tls-verified"
    dev_like = lambda rs: set_container(rs, None, None, drop_env=["DATABASE_SSLMODE"],  # noqa: E731
                                        env={"DATABASE_SSLMODE": "verify-ca"})
    assert violations(rule, prod, dev_like, tier="prod")  # prod requires verify-full
    assert violations(rule, prod, dev_like, tier="dev") == []  # dev requires none, but verification all the same
    assert violations(rule, prod, lambda rs: set_container(rs, None, None, drop_env=["DATABASE_SSLMODE"],
                                                           env={"DATABASE_SSLMODE": "require"}), tier="dev")
    assert violations(rule, prod, lambda rs: set_container(rs, None, None, drop_env=["DATABASE_SSLROOTCERT"])) == [
        "container app: no DATABASE_SSLROOTCERT to verify the server against"]
    assert violations(rule, prod, lambda rs: set_container(rs, None, None, drop_env=["REDIS_TLS"])) == [
        "container app: Redis without TLS (REDIS_TLS)"]


def test_the_firewall_rule_holds_what_the_tier_requires(prod, stacks):
    """Where the tier blocks (staging, prod), a firewall that only counts fails; dev's counting firewall passes."""
    def acl(rs):
        return first(rs, "aws:wafv2/webAcl:WebAcl")

    def counting_rate_limit(rs):
        rule = acl(rs).props["rules"][0]
        assert "rateBasedStatement" in rule["statement"]
        rule["action"] = {"count": {}}

    def everything_counts(rs):
        for rule in acl(rs).props["rules"]:
            if "overrideAction" in rule:
                rule["overrideAction"] = {"count": {}}

    assert violations("waf-on-public-load-balancer", prod, counting_rate_limit, tier="prod") == [
        "web ACL firewall-acl: rule rate-limit-per-address only counts; this tier blocks"]
    assert violations("waf-on-public-load-balancer", prod, counting_rate_limit, tier="dev") == []
    assert violations("waf-on-public-load-balancer", prod, everything_counts, tier="staging") == [
        "web ACL firewall-acl: AWSManagedRulesAmazonIpReputationList, AWSManagedRulesCommonRuleSet, "
        "AWSManagedRulesKnownBadInputsRuleSet, AWSManagedRulesSQLiRuleSet only count; this tier blocks (count "
        "single rules with firewall.countRules)"]

    def one_group_counts(rs):
        for rule in acl(rs).props["rules"]:
            if rule["name"] == "AWSManagedRulesSQLiRuleSet":
                rule["overrideAction"] = {"count": {}}
    assert violations("waf-on-public-load-balancer", prod, one_group_counts, tier="prod") == [
        "web ACL firewall-acl: AWSManagedRulesSQLiRuleSet only count; this tier blocks (count single rules with "
        "firewall.countRules)"]

    def allow_first(rs):
        acl(rs).props["rules"].insert(0, {"name": "let-me-in", "priority": 0, "action": {"allow": {}},
                                          "statement": {"byteMatchStatement": {}}})
    assert violations("waf-on-public-load-balancer", prod, allow_first) == [
        "web ACL firewall-acl: rule let-me-in allows what it matches past every later rule"]

    def bodies_past_inspection(rs):
        for rule in acl(rs).props["rules"]:
            if rule["name"] == "body-limit":
                rule["statement"]["sizeConstraintStatement"]["fieldToMatch"]["body"]["oversizeHandling"] = "CONTINUE"
    assert violations("waf-on-public-load-balancer", prod, bodies_past_inspection) == [
        "web ACL firewall-acl does not hold request bodies to what it can inspect (8192 bytes, larger ones "
        "matching)"]
    dev = checklist.policy_resources(stacks["dev"])
    assert violations("waf-on-public-load-balancer", dev, lambda rs: None, tier="dev") == []

    def one_group_less(rs):
        acl(rs).props["rules"] = [r for r in acl(rs).props["rules"] if r["name"] != "AWSManagedRulesSQLiRuleSet"]
    assert violations("waf-on-public-load-balancer", prod, one_group_less) == [
        "web ACL firewall-acl lacks AWS's managed rule groups AWSManagedRulesSQLiRuleSet"]

    def cookies_logged(rs):
        logging = first(rs, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
        logging.props["redactedFields"] = [{"singleHeader": {"name": "authorization"}}]
    assert violations("waf-on-public-load-balancer", prod, cookies_logged) == [
        "web ACL firewall-acl logs the cookie header: redact it"]


@pytest.mark.parametrize("family, cidr", [("ipv4", "0.0.0.0/0"), ("ipv6", "::/0")])
def test_ipv6_rules_are_held_to_what_ipv4_rules_are(prod, family, cidr):
    """The load balancer is dual-stack: an IPv6 rule open to the world is caught exactly as an IPv4 one."""
    key = f"cidr{family.capitalize()}"

    def world_reaches_redis(rs):
        rule = first(rs, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                     lambda r: r.name == "cache-from-app")
        rule.props.update({key: cidr, "referencedSecurityGroupId": None})
    assert violations("nothing-public-in-the-data-tier", prod, world_reaches_redis) == [
        "ingress rule cache-from-app opens port 6379 to the internet (only the load balancer's 80 and 443 may be)"]

    def app_sends_postgres_anywhere(rs):
        rule = first(rs, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
                     lambda r: r.name == "database-to-app")
        rule.props.update({key: cidr, "referencedSecurityGroupId": None})
    assert violations("narrow-egress", prod, app_sends_postgres_anywhere) == [
        f"egress rule database-to-app sends tcp 5432-5432 to {cidr}: only HTTPS (443) may go to an address range; "
        "other ports to a security group"]

    def lb_80_from_the_world(rs):
        rule = first(rs, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                     lambda r: r.name == f"load-balancer-80-{family}")
        assert rule.props[key] == cidr
    assert violations("nothing-public-in-the-data-tier", prod, lb_80_from_the_world) == []


def test_egress_and_endpoints_are_caught_in_each_way_they_can_widen(prod):
    def inline_egress(rs):
        first(rs, "aws:ec2/securityGroup:SecurityGroup").props["egress"] = [
            {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]
    assert any("inline egress" in v for v in violations("narrow-egress", prod, inline_egress))

    def any_account_through_an_endpoint(rs):
        endpoint = first(rs, "aws:ec2/vpcEndpoint:VpcEndpoint", lambda r: r.props.get("vpcEndpointType") == "Interface")
        document = json.loads(endpoint.props["policy"])
        document["Statement"][0].pop("Condition")
        endpoint.props["policy"] = json.dumps(document)
    assert any("lets any principal through" in v for v in violations("endpoint-policies", prod,
                                                                    any_account_through_an_endpoint))


def test_key_policies_are_caught_granting_logs_or_use_too_widely(prod):
    def logs_for_every_group(rs):
        key = first(rs, "aws:kms/key:Key", lambda r: r.name == "keys-logs")
        document = json.loads(key.props["policy"])
        for statement in document["Statement"]:
            if statement["Sid"] == "CloudWatchLogsEncryptsTheStacksLogGroups":
                statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] = \
                    "arn:aws:logs:eu-west-1:123456789012:log-group:*"
        key.props["policy"] = json.dumps(document)
    assert violations("explicit-key-policies", prod, logs_for_every_group) == [
        "key keys-logs: CloudWatch Logs may use it for every log group of the account; name the stack's log groups"]

    def used_directly(rs):
        key = first(rs, "aws:kms/key:Key", lambda r: r.name == "keys-data")
        document = json.loads(key.props["policy"])
        for statement in document["Statement"]:
            statement.pop("Condition", None)
        key.props["policy"] = json.dumps(document)
    assert "key keys-data: statement AccountUsesTheKeyThroughItsServices lets the account use the key directly, " \
           "not only through the services that hold its data (kms:ViaService)" in violations(
               "explicit-key-policies", prod, used_directly)
    no_policy = violations("explicit-key-policies", prod, lambda rs: first(
        rs, "aws:kms/key:Key", lambda r: r.name == "backups-key").props.pop("policy"))
    assert no_policy == ["key backups-key has the default key policy: say who administers it and who uses it how"]


def test_the_backup_rule_for_locks_holds_what_the_tier_requires(prod):
    def unlocked_dumps(rs):
        rs.remove(first(rs, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"))
    assert violations("immutable-backups", prod, unlocked_dumps, tier="prod") == [
        "bucket backups-bucket (database backups) has no Object Lock default retention: anyone allowed to delete "
        "objects can delete the dumps"]
    assert violations("immutable-backups", prod, unlocked_dumps, tier="dev") == []
    assert violations("immutable-backups", prod, lambda rs: rs.remove(first(
        rs, "aws:s3/bucketLogging:BucketLogging")), tier="dev") == [
        "bucket backups-bucket (database backups) has no access log: reads of the dumps go unrecorded"]


def test_a_tls_policy_with_cbc_suites_is_refused(prod):
    def cbc(rs):
        first(rs, "aws:lb/listener:Listener", lambda r: r.props["port"] == 443).props.update(
            sslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06")
    assert violations("https-only", prod, cbc) == [
        "HTTPS listener uses ELBSecurityPolicy-TLS13-1-2-2021-06: use a TLS 1.3 policy without CBC suites, e.g. "
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06 (infra/catalog.py lists them)"]


def test_conditions_that_do_not_hold_the_account_are_no_conditions(prod):
    """A condition key being present is not enough: the account must be held to its value."""
    def endpoint_for_other_accounts(rs):
        endpoint = first(rs, "aws:ec2/vpcEndpoint:VpcEndpoint", lambda r: r.props.get("vpcEndpointType") == "Interface")
        document = json.loads(endpoint.props["policy"])
        document["Statement"][0]["Condition"] = {"StringNotEquals": {"aws:PrincipalAccount": "999999999999"}}
        endpoint.props["policy"] = json.dumps(document)
    assert any("lets any principal through" in v for v in violations("endpoint-policies", prod,
                                                                    endpoint_for_other_accounts))

    def trust_any_account(rs):
        role = first(rs, "aws:iam/role:Role", lambda r: r.name == "database-monitoring")
        document = json.loads(role.props["assumeRolePolicy"])
        document["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"] = "*"
        role.props["assumeRolePolicy"] = json.dumps(document)
    assert violations("scoped-trust-policies", prod, trust_any_account) == [
        "role database-monitoring: monitoring.rds.amazonaws.com may assume it for any account (hold "
        "aws:SourceAccount to the account, StringEquals)"]

    def key_for_anyone_with_a_token_condition(rs):
        key = first(rs, "aws:kms/key:Key", lambda r: r.name == "keys-secrets")
        document = json.loads(key.props["policy"])
        document["Statement"].append({"Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"},
                                      "Action": "kms:Decrypt", "Resource": "*",
                                      "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
        key.props["policy"] = json.dumps(document)
    assert "key keys-secrets: statement Anyone lets anyone use the key: hold kms:CallerAccount to the account" in \
        violations("explicit-key-policies", prod, key_for_anyone_with_a_token_condition)

    def grants_for_anything(rs):
        key = first(rs, "aws:kms/key:Key", lambda r: r.name == "keys-data")
        document = json.loads(key.props["policy"])
        for statement in document["Statement"]:
            if statement["Sid"] == "ServicesHoldGrantsForTheirResources":
                statement["Condition"].pop("Bool")
        key.props["policy"] = json.dumps(document)
    assert violations("explicit-key-policies", prod, grants_for_anything) == [
        "key keys-data: statement ServicesHoldGrantsForTheirResources lets the account grant use of the key to "
        "anyone, not only to AWS resources (kms:GrantIsForAWSResource)"]


def test_ecrs_layer_bucket_is_the_one_read_an_endpoint_allows_anyone(prod):
    def any_bucket(rs):
        policy = first(rs, "aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy")
        document = json.loads(policy.props["policy"])
        document["Statement"][0]["Resource"] = "arn:aws:s3:::someone-elses-bucket/*"
        policy.props["policy"] = json.dumps(document)
    assert any("EcrImageLayers lets any principal through" in v
               for v in violations("endpoint-policies", prod, any_bucket))
