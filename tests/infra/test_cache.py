"""Cache component: the Redis replication group and its security properties."""

import json

import pytest

from infra.components.cache import Cache
from infra.offline import harness
from tests.infra.conftest import KEY_ARN, LOGS_KEY_ARN, settings_for

CLIENT_SG = "sg-0123456789abcdef0"


def build(tier="prod", **cache) -> harness.Run:
    s = settings_for(tier, cache=cache)
    return harness.run(lambda: Cache(
        "cache", s.cache, name_prefix=f"flask-aws-{tier}", vpc_id="vpc-1", subnet_ids=["s-1", "s-2", "s-3"],
        clients={"app": ("the application", CLIENT_SG)}, kms_key_arn=KEY_ARN, logs_key_arn=LOGS_KEY_ARN,
        auth_token="token-not-printed-0123456789",
        log_retention_days=s.logs.retention_days, protect=s.protect))


def test_encrypted_at_rest_and_in_transit_with_auth():
    run = build()
    group = run.one("aws:elasticache/replicationGroup:ReplicationGroup")
    i = group.inputs
    assert i["atRestEncryptionEnabled"] is True and i["kmsKeyId"] == KEY_ARN
    assert i["transitEncryptionEnabled"] is True
    assert group.redacted["authToken"] == harness.SECRET
    assert "token-not-printed" not in json.dumps(run.as_json())


@pytest.mark.parametrize("tier,nodes,failover,multi_az", [("dev", 1, False, False), ("staging", 2, True, True),
                                                          ("prod", 3, True, True)])
def test_topology_per_tier(tier, nodes, failover, multi_az):
    i = build(tier).one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert (i["numCacheClusters"], i["automaticFailoverEnabled"], i["multiAzEnabled"]) == (nodes, failover,
                                                                                          multi_az)
    assert i["nodeType"].startswith("cache.") and i["engineVersion"] == "7.1"


def test_only_the_client_group_reaches_6379_and_it_may_send_there():
    run = build()
    (rule,) = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["referencedSecurityGroupId"] == CLIENT_SG
    assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (6379, 6379)
    assert "cidrIpv4" not in rule.inputs
    # The client's egress to the cache: this port, to this group only.
    (egress,) = run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    group = run.named("cache-sg", "aws:ec2/securityGroup:SecurityGroup")
    assert egress.inputs["securityGroupId"] == CLIENT_SG
    assert egress.dependencies["referencedSecurityGroupId"] == [group.urn]
    assert (egress.inputs["fromPort"], egress.inputs["toPort"]) == (6379, 6379)


def test_slow_log_snapshots_and_windows():
    run = build()
    i = run.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    log = run.one("aws:cloudwatch/logGroup:LogGroup")
    assert i["logDeliveryConfigurations"] == [{"destination": log.outputs["name"],
                                               "destinationType": "cloudwatch-logs", "logFormat": "json",
                                               "logType": "slow-log"}]
    assert log.inputs["retentionInDays"] == 90 and log.inputs["kmsKeyId"] == LOGS_KEY_ARN
    assert i["snapshotRetentionLimit"] == 7
    assert (i["snapshotWindow"], i["maintenanceWindow"]) == ("02:00-03:00", "sun:05:30-sun:06:30")
    params = run.one("aws:elasticache/parameterGroup:ParameterGroup").inputs
    assert params["family"] == "redis7"


def test_protected_by_setting():
    assert build("prod").one("aws:elasticache/replicationGroup:ReplicationGroup").protect
    assert not build("dev").one("aws:elasticache/replicationGroup:ReplicationGroup").protect
