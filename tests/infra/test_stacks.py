"""The whole program per stack: topology, and invariants that hold for every stack."""

import ipaddress
import json

import pulumi
import pytest

from infra.offline import harness
from tests.infra.conftest import STACKS

RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"


def count(run, type_):
    return len(run.of_type(type_))


def test_prod_topology(stacks):
    run = stacks["prod"]
    assert run.outputs["availabilityZones"] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert count(run, "aws:ec2/subnet:Subnet") == 9
    assert count(run, "aws:ec2/natGateway:NatGateway") == 3
    rds = run.of_type(RDS)
    assert len([r for r in rds if "replicateSourceDb" not in r.inputs]) == 1
    assert len([r for r in rds if "replicateSourceDb" in r.inputs]) == 2
    redis = run.one(REDIS).inputs
    assert redis["numCacheClusters"] >= 2 and redis["automaticFailoverEnabled"] is True
    assert count(run, "aws:backup/plan:Plan") == 1
    assert len(run.outputs["databaseReplicaAddresses"]) == 2


def test_dev_topology(stacks):
    run = stacks["dev"]
    assert count(run, "aws:ec2/subnet:Subnet") == 6
    assert count(run, "aws:ec2/natGateway:NatGateway") == 1
    assert count(run, RDS) == 1
    assert count(run, "aws:backup/plan:Plan") == 0
    assert run.outputs["databaseReplicaAddresses"] == []


def test_staging_has_prods_topology_at_smaller_sizes(stacks):
    staging, prod = stacks["staging"], stacks["prod"]
    assert count(staging, "aws:ec2/subnet:Subnet") == count(prod, "aws:ec2/subnet:Subnet")
    assert count(staging, "aws:ec2/vpcEndpoint:VpcEndpoint") == count(prod, "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert count(staging, "aws:backup/plan:Plan") == 1
    assert staging.one(REDIS).inputs["automaticFailoverEnabled"] is True
    primary = next(r for r in staging.of_type(RDS) if "replicateSourceDb" not in r.inputs)
    assert primary.inputs["multiAz"] is True and primary.inputs["instanceClass"] == "db.t4g.medium"
    # The listed exceptions (docs/ARCHITECTURE.md): one NAT gateway, one replica, no cross-region copy.
    assert count(staging, "aws:ec2/natGateway:NatGateway") == 1
    assert count(staging, RDS) == 2
    assert count(staging, "aws:backup/vault:Vault") == 1


@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_resource_uses_the_tagged_provider(stacks, stack):
    run = stacks[stack]
    provider = run.one("pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert {k: tags[k] for k in ("Project", "Stack", "Environment", "ManagedBy")} == {
        "Project": "flask-aws", "Stack": stack, "Environment": stack, "ManagedBy": "pulumi"}
    aws_resources = [r for r in run.resources if r.custom and r.type.startswith("aws:")]
    assert aws_resources
    assert all(r.provider and r.provider.startswith(provider.urn + "::") for r in aws_resources), [
        r.name for r in aws_resources if not (r.provider or "").startswith(provider.urn)]


def test_user_tags_join_the_default_tags(stacks):
    tags = json.loads(stacks["prod"].one("pulumi:providers:aws").inputs["defaultTags"])["tags"]
    assert tags["CostCenter"] == "platform"


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_in_the_data_subnets_is_public(stacks, stack):
    run = stacks[stack]
    assert all(r.inputs["publiclyAccessible"] is False for r in run.of_type(RDS))
    isolated_ids = set(run.outputs["isolatedSubnetIds"])
    assert set(run.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"]) == isolated_ids
    assert set(run.one("aws:elasticache/subnetGroup:SubnetGroup").inputs["subnetIds"]) == isolated_ids
    isolated_table = run.named("network-isolated", "aws:ec2/routeTable:RouteTable")
    assert not [c for c in run.children(isolated_table) if c.type == "aws:ec2/route:Route"]
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in run.of_type("aws:ec2/subnet:Subnet"))


@pytest.mark.parametrize("stack", STACKS)
def test_everything_that_can_be_encrypted_is(stacks, stack):
    """Each class of data with its own key: the database, its replicas, snapshots, the cache and images with the data
    key; every log group and the alarm topic with the logs key; every secret with the secrets key."""
    run = stacks[stack]
    keys = run.outputs["kmsKeyArns"]
    for db in run.of_type(RDS):
        assert db.inputs["storageEncrypted"] is True and db.inputs["kmsKeyId"] == keys["data"]
        if db.inputs["performanceInsightsEnabled"]:
            assert db.inputs["performanceInsightsKmsKeyId"] == keys["data"]
    redis = run.one(REDIS).inputs
    assert redis["atRestEncryptionEnabled"] and redis["transitEncryptionEnabled"] and redis["kmsKeyId"] == keys["data"]
    assert run.one("aws:ecr/repository:Repository").inputs["encryptionConfigurations"][0]["kmsKey"] == keys["data"]
    assert all(g.inputs["kmsKeyId"] == keys["logs"] for g in run.of_type("aws:cloudwatch/logGroup:LogGroup"))
    assert run.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"] == keys["logs"]
    assert all(s.inputs["kmsKeyId"] == keys["secrets"] for s in run.of_type("aws:secretsmanager/secret:Secret"))
    named = {k.name: k.outputs["arn"] for k in run.of_type("aws:kms/key:Key")}
    for vault in run.of_type("aws:backup/vault:Vault"):
        expected = named["backup-copy-key"] if vault.name == "backup-copy-vault" else keys["data"]
        assert vault.inputs["kmsKeyArn"] == expected
    assert len(set(keys.values())) == 3
    assert all(k.inputs["enableKeyRotation"] for k in run.of_type("aws:kms/key:Key"))


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_load_balancer_admits_the_internet_and_only_on_80_and_443(stacks, stack):
    run = stacks[stack]
    vpc = ipaddress.ip_network(run.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"])
    alb_group = run.named("load-balancer-sg", "aws:ec2/securityGroup:SecurityGroup")
    internet = set()
    for rule in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert "prefixListId" not in rule.inputs, rule.name
        cidr = rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6")
        if cidr and not (rule.inputs.get("cidrIpv4") and ipaddress.ip_network(cidr).subnet_of(vpc)):
            assert rule.parent == alb_group.urn, rule.name
            internet.add((rule.inputs["fromPort"], rule.inputs["toPort"], cidr))
        elif not cidr:
            assert rule.inputs["referencedSecurityGroupId"].startswith("sg-"), rule.name
    assert internet == {(80, 80, "0.0.0.0/0"), (80, 80, "::/0"), (443, 443, "0.0.0.0/0"), (443, 443, "::/0")}
    for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert not group.inputs.get("ingress"), group.name
    assert not run.of_type("aws:ec2/securityGroupRule:SecurityGroupRule")


@pytest.mark.parametrize("stack", STACKS)
def test_no_task_gets_a_public_ip(stacks, stack):
    run = stacks[stack]
    for service in run.of_type("aws:ecs/service:Service"):
        network = service.inputs["networkConfiguration"]
        assert network["assignPublicIp"] is False
        assert set(network["subnets"]) == set(run.outputs["privateSubnetIds"])


def test_prod_serving_path(stacks):
    run = stacks["prod"]
    assert count(run, "aws:lb/loadBalancer:LoadBalancer") == 1
    listeners = {r.inputs["port"]: r.inputs for r in run.of_type("aws:lb/listener:Listener")}
    assert listeners[443]["protocol"] == "HTTPS" and listeners[80]["defaultActions"][0]["type"] == "redirect"
    assert count(run, "aws:lb/targetGroup:TargetGroup") == 1
    service = run.one("aws:ecs/service:Service").inputs
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert count(run, "aws:appautoscaling/target:Target") == 1
    policies = run.of_type("aws:appautoscaling/policy:Policy")
    assert len(policies) == 3 and all(p.inputs["policyType"] == "TargetTrackingScaling" for p in policies)
    assert run.outputs["url"] == "https://app.example.com"


def test_the_task_runs_the_pushed_image_by_digest_with_the_stack_wiring(stacks):
    run = stacks["prod"]
    task = run.named("service-task", "aws:ecs/taskDefinition:TaskDefinition")
    migrate, container = json.loads(task.inputs["containerDefinitions"])
    assert container["image"] == migrate["image"] == run.outputs["imageUri"] == run.one(
        "docker:index/image:Image").outputs["repoDigest"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["DATABASE_HOST"] == run.outputs["databaseAddress"]
    assert env["DATABASE_REPLICA_HOSTS"].split(",") == run.outputs["databaseReplicaAddresses"]
    assert env["REDIS_HOST"] == run.outputs["redisPrimaryEndpoint"]
    assert env["SECRET_KEY_SECRET_ARN"] == run.outputs["secretKeySecretArn"]
    assert env["DATABASE_SECRET_ARN"] == run.outputs["databaseLoginSecretArns"]["runtime"]
    assert env["REDIS_AUTH_SECRET_ARN"] == run.outputs["redisAuthTokenSecretArn"]


def test_a_prebuilt_image_is_deployed_without_a_build():
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flask-aws-prod/app@sha256:" + "d" * 64
    run = harness.run_stack("prod", {"image": {"uri": uri}})
    assert run.of_type("docker:index/image:Image") == []
    task = run.named("service-task", "aws:ecs/taskDefinition:TaskDefinition")
    assert [c["image"] for c in json.loads(task.inputs["containerDefinitions"])] == [uri, uri]
    assert uri == run.outputs["imageUri"]


def test_dev_serves_plain_http_on_the_load_balancer_name(stacks):
    run = stacks["dev"]
    assert run.outputs["url"].startswith("http://") and run.outputs["url"].endswith(".elb.amazonaws.com")
    assert [r.inputs["port"] for r in run.of_type("aws:lb/listener:Listener")] == [80]


@pytest.mark.parametrize("stack,protected", [("dev", False), ("staging", True), ("prod", True)])
def test_stateful_resources_are_protected_by_tier(stacks, stack, protected):
    run = stacks[stack]
    stateful = run.of_type(RDS) + run.of_type(REDIS) + run.of_type("aws:kms/key:Key") + run.of_type(
        "aws:secretsmanager/secret:Secret") + run.of_type("aws:backup/vault:Vault")
    assert stateful and all(r.protect is protected for r in stateful)


@pytest.mark.parametrize("stack", STACKS)
def test_exports_for_the_next_layer_and_no_secret_in_them(stacks, stack):
    run = stacks[stack]
    for key in ("url", "clusterName", "serviceName", "logGroupName", "ecrRepositoryUrl", "imageUri",
                "vpcId", "publicSubnetIds", "privateSubnetIds", "isolatedSubnetIds", "appSecurityGroupId",
                "databaseAddress", "databasePort", "databaseReplicaAddresses", "redisPrimaryEndpoint", "redisPort",
                "secretKeySecretArn", "redisAuthTokenSecretArn", "databaseLoginSecretArns"):
        assert key in run.outputs, key
    printed = json.dumps(run.as_json())
    for password in run.of_type("random:index/randomPassword:RandomPassword"):
        assert password.outputs["result"] not in printed
        assert password.outputs["result"] not in json.dumps(run.outputs)


def test_invalid_stack_config_stops_before_any_resource_and_lists_every_problem(monkeypatch):
    from infra import stack

    built = []
    monkeypatch.setattr(stack, "build", lambda settings: built.append(settings) or {})
    with pytest.raises(pulumi.RunError) as caught:
        harness.run_stack("prod", {"database": {"replicas": 9, "deletionProtection": False},
                                   "cache": {"nodes": 1}, "logs": {"retentionDays": 10}})
    assert built == []
    message = str(caught.value)
    for key in ("database.replicas", "database.deletionProtection", "cache.nodes", "logs.retentionDays"):
        assert f"flask-aws:{key}" in message
    assert "Traceback" not in message
    harness.run_stack("prod")
    assert len(built) == 1  # the same patch sees a valid stack reach build()


def test_the_prod_plan_shows_the_logins_their_rotation_and_the_migration_step_apart(stacks):
    """What the database-identity work promised to show on the plan: a secret per login, a rotation for each, the
    migration step before the server with the privileged logins, the server with none injected and verify-full."""
    from infra.offline import plan

    text = plan.tree(stacks["prod"])
    for kind in ("master", "owner", "runtime", "backup", "drill"):
        assert f"- database-logins-{kind} (aws:secretsmanager/secret:Secret)" in text
        assert f"- rotation-{kind} (aws:secretsmanager/secretRotation:SecretRotation)  rotationRules." in text
    assert ("container migrate: runs first, then exits; runs `flask --app webapp db prepare`; "
            "DATABASE_SSLMODE=verify-full; injected: DATABASE_BACKUP_PASSWORD") in text
    assert ("container app: essential; after migrate (SUCCESS); DATABASE_SSLMODE=verify-full; nothing injected; "
            "reads itself: DATABASE_SECRET_ARN, REDIS_AUTH_SECRET_ARN, SECRET_KEY_SECRET_ARN") in text


def policy_documents(run):
    """Every policy document the stack hands AWS: IAM, trust, key, bucket, topic, endpoint and log policies."""
    for resource in run.resources:
        for key in ("policy", "assumeRolePolicy", "policyDocument"):
            text = resource.inputs.get(key)
            if isinstance(text, str) and text.startswith("{"):
                yield resource, json.loads(text)


@pytest.mark.parametrize("stack", STACKS)
def test_a_review_of_the_plan_finds_no_open_principal_and_no_default_key_policy(stacks, stack):
    """What a security review of the plan looks for: an Allow to anyone without a condition, a key left on the
    default key policy, the HTTP listener doing anything but redirect where HTTPS is served."""
    run = stacks[stack]
    account = run.named("service-task", "aws:iam/role:Role").outputs["arn"].split(":")[4]
    for resource, document in policy_documents(run):
        for statement in document.get("Statement", []):
            principal = statement.get("Principal")
            anyone = principal == "*" or (isinstance(principal, dict) and "*" in (
                principal.get("AWS") if isinstance(principal.get("AWS"), list) else [principal.get("AWS")]))
            if statement["Effect"] != "Allow" or not anyone:
                continue
            if statement["Action"] == "s3:GetObject" and statement["Resource"].endswith("-starport-layer-bucket/*"):
                continue  # ECR's image layers: the URL is ECR's account's, presigned (infra/components/network.py)
            pinned = (statement.get("Condition") or {}).get("StringEquals") or {}
            assert pinned.get("aws:PrincipalAccount") == account or pinned.get("kms:CallerAccount") == account, (
                resource.name, statement)
    for key in run.of_type("aws:kms/key:Key"):
        assert json.loads(key.inputs["policy"])["Statement"], key.name
    if stack != "dev":
        (http,) = [listener for listener in run.of_type("aws:lb/listener:Listener") if listener.inputs["port"] == 80]
        assert [action["type"] for action in http.inputs["defaultActions"]] == ["redirect"]
