"""Database component: the primary, the replicas, and everything security-relevant about them."""

import json

import pytest

from infra.components.database import Database
from infra.offline import harness
from tests.infra.conftest import CONTEXT, KEY_ARN, LOGS_KEY_ARN, settings_for

CLIENT_SG = "sg-0123456789abcdef0"
JOBS_SG = "sg-0aaaaaaaaaaaaaaaa"
ROTATION_SG = "sg-0fedcba9876543210"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def build(tier="prod", protect=True, **database) -> harness.Run:
    s = settings_for(tier, database=database)
    return harness.run(lambda: Database(
        "database", s.database, context=CONTEXT, name_prefix=f"flask-aws-{tier}", vpc_id="vpc-1",
        subnet_ids=["s-1", "s-2", "s-3"], zones=ZONES,
        clients={"app": ("the application", CLIENT_SG), "jobs": ("the backup jobs", JOBS_SG),
                 "rotation": ("the rotation functions", ROTATION_SG)}, kms_key_arn=KEY_ARN, logs_key_arn=LOGS_KEY_ARN,
        password="p@ss-not-printed",
        log_retention_days=s.logs.retention_days, protect=protect))


def instances(run):
    rds = run.of_type("aws:rds/instance:Instance")
    primary = [r for r in rds if "replicateSourceDb" not in r.inputs]
    assert len(primary) == 1
    return primary[0], sorted((r for r in rds if r not in primary), key=lambda r: r.name)


def test_only_the_application_the_jobs_and_the_rotation_functions_reach_5432():
    run = build()
    rules = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    clients = sorted([CLIENT_SG, JOBS_SG, ROTATION_SG])
    assert sorted(r.inputs["referencedSecurityGroupId"] for r in rules) == clients
    for rule in rules:
        assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (5432, 5432, "tcp")
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs
    group = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert "ingress" not in group.inputs and "egress" not in group.inputs
    # Each client may send to the database on 5432, and its egress names the database's group.
    egress = run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert sorted(r.inputs["securityGroupId"] for r in egress) == clients
    assert all(r.dependencies["referencedSecurityGroupId"] == [group.urn] and
               (r.inputs["fromPort"], r.inputs["toPort"]) == (5432, 5432) for r in egress)


def test_parameter_group_forces_tls_and_logs_slow_queries():
    group = build().one("aws:rds/parameterGroup:ParameterGroup")
    assert group.inputs["family"] == "postgres15"
    params = {p["name"]: p for p in group.inputs["parameters"]}
    assert params["rds.force_ssl"]["value"] == "1"
    assert params["rds.force_ssl"]["applyMethod"] == "pending-reboot"
    assert params["log_min_duration_statement"]["value"] == "500"


def test_primary_is_encrypted_private_backed_up_and_protected():
    run = build()
    primary, _ = instances(run)
    i = primary.inputs
    assert i["engine"] == "postgres" and i["engineVersion"] == "15"
    assert i["storageEncrypted"] is True and i["kmsKeyId"] == KEY_ARN and i["storageType"] == "gp3"
    assert i["publiclyAccessible"] is False
    assert i["multiAz"] is True
    assert i["maxAllocatedStorage"] > i["allocatedStorage"]
    assert (i["backupRetentionPeriod"], i["backupWindow"], i["maintenanceWindow"]) == (30, "03:00-04:00",
                                                                                       "sun:04:30-sun:05:30")
    assert i["copyTagsToSnapshot"] is True and i["deletionProtection"] is True
    assert i["skipFinalSnapshot"] is False
    assert i["finalSnapshotIdentifier"].startswith("flask-aws-prod-db-final-")
    # The first password only: the master login's rotation owns it after, and a deploy must not set it back.
    assert primary.ignore_changes == ["password"]
    assert len(i["finalSnapshotIdentifier"]) > len("flask-aws-prod-db-final-")
    assert i["performanceInsightsEnabled"] is True and i["performanceInsightsKmsKeyId"] == KEY_ARN
    assert i["monitoringInterval"] == 60 and i["monitoringRoleArn"].startswith("arn:aws:iam::")
    # RDS assumes the monitoring role for this account's instances of this stack only.
    trust = json.loads(run.named("database-monitoring", "aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": harness.ACCOUNT},
        "ArnLike": {"aws:SourceArn": [f"arn:aws:rds:eu-west-1:{harness.ACCOUNT}:db:flask-aws-prod-db",
                                      f"arn:aws:rds:eu-west-1:{harness.ACCOUNT}:db:flask-aws-prod-db-replica-*"]}}
    assert i["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert i["caCertIdentifier"].startswith("rds-ca-")
    assert primary.protect


def test_password_is_never_printed():
    run = build()
    primary, _ = instances(run)
    assert primary.redacted["password"] == harness.SECRET
    assert "p@ss-not-printed" not in json.dumps(run.as_json())


def test_log_groups_exist_before_rds_creates_them_with_retention_and_key():
    run = build(replicas=1)
    groups = {g.inputs["name"]: g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert set(groups) == {f"/aws/rds/instance/{db}/{log}" for db in ("flask-aws-prod-db",
                                                                      "flask-aws-prod-db-replica-1")
                           for log in ("postgresql", "upgrade")}
    assert all(g.inputs["retentionInDays"] == 90 and g.inputs["kmsKeyId"] == LOGS_KEY_ARN for g in groups.values())


@pytest.mark.parametrize("count", [0, 1, 2, 5])
def test_replicas_follow_the_primary_across_azs(count):
    run = build(replicas=count)
    primary, replicas = instances(run)
    assert len(replicas) == count
    for replica in replicas:
        i = replica.inputs
        assert i["replicateSourceDb"] == primary.outputs["identifier"]
        assert i["skipFinalSnapshot"] is True and i["publiclyAccessible"] is False
        for inherited in ("username", "password", "dbName", "engine", "backupRetentionPeriod", "dbSubnetGroupName"):
            assert inherited not in i, inherited
        # Encryption is stated, with the primary's key, not left to inheritance.
        assert i["storageEncrypted"] is True and i["kmsKeyId"] == KEY_ARN == primary.inputs["kmsKeyId"]
        assert i["vpcSecurityGroupIds"] == primary.inputs["vpcSecurityGroupIds"]
    zones = [r.inputs["availabilityZone"] for r in replicas]
    assert len(set(zones)) == min(count, len(ZONES))
    assert zones[:2] == ["eu-west-1b", "eu-west-1c"][:count]  # the first replicas leave the first AZ


def test_replica_class_defaults_to_the_primary_and_can_differ():
    _, replicas = instances(build(replicas=1))
    assert replicas[0].inputs["instanceClass"] == "db.r6g.large"
    _, replicas = instances(build(replicas=1, replicaInstanceClass="db.r6g.xlarge"))
    assert replicas[0].inputs["instanceClass"] == "db.r6g.xlarge"


def test_dev_sizing_turns_off_what_costs():
    run = build("dev", protect=False)
    primary, replicas = instances(run)
    assert replicas == []
    assert primary.inputs["multiAz"] is False and primary.inputs["deletionProtection"] is False
    assert primary.inputs["monitoringInterval"] == 0 and "monitoringRoleArn" not in primary.inputs
    assert run.of_type("aws:iam/role:Role") == []
    assert not primary.protect
