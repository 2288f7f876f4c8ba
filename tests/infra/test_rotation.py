"""CredentialRotation: AWS's PostgreSQL rotation applications for the database logins, our function for the Flask
key set (run here against moto's Secrets Manager, step by step as the service calls it), and a schedule per secret."""

from __future__ import annotations

import importlib.util
import json
import uuid

import boto3
import pulumi_aws as aws
import pytest

from infra.components import AwsContext
from infra.components.rotation import SIGNING_KEYS_CODE, CredentialRotation, application_id, function_names
from infra.offline import harness
from tests.infra.checks import policy_findings
from tests.infra.conftest import CONTEXT, LOGS_KEY_ARN, SECRET_ARNS, settings_for, wiring_for
from tests.infra.conftest import SECRETS_KEY_ARN as KEY_ARN

ROTATION_SG = "sg-0r0r0r0r0r0r0r0r0"


def build(tier="prod", context: AwsContext = CONTEXT) -> harness.Run:
    s = settings_for(tier)

    def program():
        service = aws.ecs.Service("service", name="app", cluster="arn:cluster", task_definition="arn:task")
        CredentialRotation(
            "rotation", s.secrets, context=context, name_prefix=f"flask-aws-{tier}", logins=wiring_for(s).logins,
            secret_key_arn=SECRET_ARNS["flask-secret-key"], kms_key_arn=KEY_ARN, logs_key_arn=LOGS_KEY_ARN,
            subnet_ids=["subnet-p1", "subnet-p2"], security_group_id=ROTATION_SG, log_retention_days=90,
            roles_exist=[service])
    return harness.run(program)


def test_the_database_logins_rotate_with_aws_functions_in_the_private_subnets():
    run = build()
    apps = {a.name: a.inputs for a in run.of_type(
        "aws:serverlessrepository/cloudFormationStack:CloudFormationStack")}
    assert set(apps) == {"rotation-single", "rotation-multi"}
    single, multi = apps["rotation-single"], apps["rotation-multi"]
    assert single["applicationId"] == ("arn:aws:serverlessrepo:us-east-1:297356227824:applications/"
                                       "SecretsManagerRDSPostgreSQLRotationSingleUser")
    assert multi["applicationId"].endswith("/SecretsManagerRDSPostgreSQLRotationMultiUser")
    for app in apps.values():
        assert app["semanticVersion"] == "1.1.671"
        assert sorted(app["capabilities"]) == ["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"]
        params = app["parameters"]
        assert params["endpoint"] == "https://secretsmanager.eu-west-1.amazonaws.com"
        assert (params["vpcSubnetIds"], params["vpcSecurityGroupIds"], params["kmsKeyArn"]) == (
            "subnet-p1,subnet-p2", ROTATION_SG, KEY_ARN)
    # The multi-user function logs in as the master to create and change the runtime role's alternate login.
    assert (multi["parameters"]["masterSecretArn"], multi["parameters"]["masterSecretKmsKeyArn"]) == (
        SECRET_ARNS["database-master"], KEY_ARN)
    assert "masterSecretArn" not in single["parameters"]
    # Their way to the database (5432 to its group) is the database's to open (tests/infra/test_database.py).
    assert run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") == []


def test_other_partitions_get_the_applications_published_there():
    assert application_id("aws-us-gov", "single") == (
        "arn:aws-us-gov:serverlessrepo:us-gov-west-1:023102451235:applications/"
        "SecretsManagerRDSPostgreSQLRotationSingleUser", "1.1.397")
    assert application_id("aws-cn", "multi")[0].startswith("arn:aws-cn:serverlessrepo:cn-north-1:193023089310:")


def test_every_secret_rotates_on_its_schedule_never_at_deploy_time():
    """Secrets Manager tests the function on a secret as soon as its rotation is set (testSecret logs in as the
    role): the schedules wait for the service, steady once a task's migration step has made the roles."""
    run = build()
    service = run.one("aws:ecs/service:Service").urn
    assert all(service in r.depends_on for r in run.of_type("aws:secretsmanager/secretRotation:SecretRotation"))
    rotations = {r.name.removeprefix("rotation-"): r.inputs
                 for r in run.of_type("aws:secretsmanager/secretRotation:SecretRotation")}
    assert set(rotations) == {"master", "owner", "runtime", "backup", "drill", "signing-keys"}
    functions = {f: f"arn:aws:lambda:eu-west-1:{harness.ACCOUNT}:function:{f}" for f in function_names(
        "flask-aws-prod")}
    by_scheme = {"master": "single", "owner": "single", "backup": "single", "drill": "single", "runtime": "multi",
                 "signing-keys": "signing-keys"}
    for label, rotation in rotations.items():
        assert rotation["rotateImmediately"] is False, label
        assert rotation["rotationLambdaArn"] == functions[f"flask-aws-prod-rotate-{by_scheme[label]}"], label
        expected = "cron(0 13 1 * ? *)" if label == "master" else "cron(0 1 1 * ? *)"
        assert rotation["rotationRules"] == {"scheduleExpression": expected, "duration": "1h"}, label
    assert rotations["signing-keys"]["secretId"] == SECRET_ARNS["flask-secret-key"]


def test_the_functions_logs_exist_before_lambda_makes_them():
    run = build()
    groups = {g.inputs["name"]: g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert set(groups) == {f"/aws/lambda/{f}" for f in function_names("flask-aws-prod")}
    assert all(g.inputs["retentionInDays"] == 90 and g.inputs["kmsKeyId"] == LOGS_KEY_ARN for g in groups.values())
    for app in run.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack"):
        assert f"/aws/lambda/{app.inputs['parameters']['functionName']}" in groups


def test_the_key_set_function_may_rotate_that_secret_alone():
    run = build()
    function = run.one("aws:lambda/function:Function").inputs
    assert (function["runtime"], function["handler"]) == ("python3.12", "rotate_signing_keys.lambda_handler")
    assert function["code"]["archive"]["rotate_signing_keys.py"]["file"].endswith(
        "infra/functions/rotate_signing_keys.py")
    document = json.loads(run.named("rotation-signing-keys", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert policy_findings(document) == []
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["RotateTheKeySet"]["Resource"] == SECRET_ARNS["flask-secret-key"]
    assert by_sid["UseTheKeyThroughSecretsManager"]["Resource"] == KEY_ARN
    trust = json.loads(run.named("rotation-signing-keys", "aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": harness.ACCOUNT}}
    permission = run.one("aws:lambda/permission:Permission").inputs
    assert (permission["principal"], permission["sourceAccount"], permission["sourceArn"]) == (
        "secretsmanager.amazonaws.com", harness.ACCOUNT, SECRET_ARNS["flask-secret-key"])


@pytest.fixture
def handler():
    spec = importlib.util.spec_from_file_location("rotate_signing_keys", SIGNING_KEYS_CODE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def current(client, arn: str) -> dict:
    """AWSCURRENT, named: moto answers a GetSecretValue without a stage with a version of its own."""
    return json.loads(client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])


def rotate(handler, client, arn: str) -> str:
    """What Secrets Manager does for one rotation: the four steps, each with the same token."""
    token = str(uuid.uuid4())
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None, client)
    return token


def test_the_key_set_moves_on_by_one_each_rotation(aws, handler):
    client = boto3.client("secretsmanager")
    first = {"current": "c" * 64, "next": "n" * 64, "previous": ""}
    arn = client.create_secret(Name="flask-keys", SecretString=json.dumps(first))["ARN"]
    with pytest.raises(ValueError, match="not enabled for rotation"):
        rotate(handler, client, arn)
    client.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    before = current(client, arn)
    token = rotate(handler, client, arn)
    after = current(client, arn)
    assert (after["previous"], after["current"]) == (before["current"], before["next"])
    assert len(after["next"]) >= 32 and after["next"] not in (before["current"], before["next"])
    assert client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["VersionId"] == token
    # A step retried after it succeeded changes nothing.
    handler({"SecretId": arn, "ClientRequestToken": token, "Step": "finishSecret"}, None, client)
    assert current(client, arn) == after
    rotate(handler, client, arn)
    second = current(client, arn)
    assert (second["previous"], second["current"]) == (after["current"], after["next"])


def test_a_pending_version_that_is_not_the_set_moved_on_fails_the_test_step(aws, handler):
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="flask-keys", SecretString=json.dumps(
        {"current": "c" * 64, "next": "n" * 64, "previous": ""}))["ARN"]
    client.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    token = str(uuid.uuid4())
    client.put_secret_value(SecretId=arn, ClientRequestToken=token, VersionStages=["AWSPENDING"],
                            SecretString=json.dumps({"current": "x" * 64, "next": "y" * 64, "previous": "c" * 64}))
    with pytest.raises(ValueError, match="not the present key set moved on by one"):
        handler({"SecretId": arn, "ClientRequestToken": token, "Step": "testSecret"}, None, client)
    assert current(client, arn)["current"] == "c" * 64


def test_setting_the_rotation_is_tested_on_a_copy_of_the_key_set_and_passes(aws, handler):
    """What Secrets Manager does when rotation is set without rotating: testSecret on a pending copy."""
    client = boto3.client("secretsmanager")
    first = {"current": "c" * 64, "next": "n" * 64, "previous": ""}
    arn = client.create_secret(Name="flask-keys", SecretString=json.dumps(first))["ARN"]
    client.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    token = str(uuid.uuid4())
    client.put_secret_value(SecretId=arn, ClientRequestToken=token, VersionStages=["AWSPENDING"],
                            SecretString=json.dumps(first))
    handler({"SecretId": arn, "ClientRequestToken": token, "Step": "testSecret"}, None, client)
    weak = str(uuid.uuid4())
    client.put_secret_value(SecretId=arn, ClientRequestToken=weak, VersionStages=["AWSPENDING"],
                            SecretString=json.dumps({**first, "next": "short"}))
    with pytest.raises(ValueError, match="must have 32 characters or more"):
        handler({"SecretId": arn, "ClientRequestToken": weak, "Step": "testSecret"}, None, client)
