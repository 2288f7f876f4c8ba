"""Credential rotation: AWS's own rotation functions for PostgreSQL (from the Serverless Application Repository, the
way the Secrets Manager console and the CDK deploy them), in the private subnets, and a function of ours for the
Flask key set, for which AWS has none (infra/functions/rotate_signing_keys.py). Every secret gets a schedule."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra.components import AwsContext, assume_role_policy, policy, type_token
from infra.components.logins import Login
from infra.settings import SecretsSettings

# The applications, and the versions aws-cdk-lib pins (SecretRotationApplication, read 2026-12), per partition: the
# publisher's account and region, and the version published there.
APPLICATIONS = {"single": "SecretsManagerRDSPostgreSQLRotationSingleUser",
                "multi": "SecretsManagerRDSPostgreSQLRotationMultiUser"}
PUBLISHERS = {"aws": ("us-east-1", "297356227824", "1.1.671"),
              "aws-cn": ("cn-north-1", "193023089310", "1.1.440"),
              "aws-us-gov": ("us-gov-west-1", "023102451235", "1.1.397")}
WINDOW = "1h"  # each schedule's rotation window; the schedules keep the windows apart (tier defaults)
SIGNING_KEYS_CODE = Path(__file__).resolve().parents[1] / "functions" / "rotate_signing_keys.py"


def function_name(name_prefix: str, scheme: str) -> str:
    """single and multi: AWS's functions; signing-keys: ours."""
    return f"{name_prefix}-rotate-{scheme}"


def function_names(name_prefix: str) -> list[str]:
    """The rotation functions, which monitoring watches before they exist."""
    return [function_name(name_prefix, scheme) for scheme in (*APPLICATIONS, "signing-keys")]


def rotated_secrets(logins: dict[str, Login], secret_key_arn: pulumi.Input[str]) -> list[pulumi.Input[str]]:
    """Every secret that rotates on a schedule: the database logins and the Flask key set."""
    return [login.secret_arn for login in logins.values()] + [secret_key_arn]


def application_id(partition: str, scheme: str) -> tuple[str, str]:
    region, account, version = PUBLISHERS[partition]
    return f"arn:{partition}:serverlessrepo:{region}:{account}:applications/{APPLICATIONS[scheme]}", version


def signing_keys_policy(secret_arn: str, key_arn: str, log_group_arn: str) -> dict:
    """Rotate one secret, use the key through Secrets Manager, write its own log group."""
    return policy(
        {"Sid": "RotateTheKeySet", "Effect": "Allow", "Resource": secret_arn,
         "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage"]},
        {"Sid": "UseTheKeyThroughSecretsManager", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": key_arn, "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}},
        {"Sid": "WriteItsLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"{log_group_arn}:*"},
    )


class CredentialRotation(pulumi.ComponentResource):
    """Rotation of every database login and of the Flask key set, on the settings' schedules (the master's apart
    from the others'). The schedules are set after `roles_exist` (the service, steady once a task's migration step
    has created the roles): setting one makes Secrets Manager test the function on the secret at once."""

    def __init__(self, name: str, settings: SecretsSettings, *, context: AwsContext, name_prefix: str,
                 logins: dict[str, Login], secret_key_arn: pulumi.Input[str], kms_key_arn: pulumi.Input[str],
                 logs_key_arn: pulumi.Input[str],
                 subnet_ids: list[pulumi.Input[str]], security_group_id: pulumi.Input[str], log_retention_days: int,
                 roles_exist: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("secrets", "CredentialRotation"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def log_group(scheme: str) -> aws.cloudwatch.LogGroup:
            # Lambda would create it itself, unencrypted and kept forever.
            return aws.cloudwatch.LogGroup(f"{name}-{scheme}-logs",
                                           name=f"/aws/lambda/{function_name(name_prefix, scheme)}",
                                           retention_in_days=log_retention_days, kms_key_id=logs_key_arn, opts=child)

        functions: dict[str, pulumi.Output[str]] = {}
        for scheme in APPLICATIONS:
            app_id, version = application_id(context.partition, scheme)
            parameters = {
                "endpoint": f"https://secretsmanager.{context.region}.{context.dns_suffix}",
                "functionName": function_name(name_prefix, scheme),
                "vpcSubnetIds": pulumi.Output.all(*subnet_ids).apply(",".join),
                "vpcSecurityGroupIds": security_group_id,
                "kmsKeyArn": kms_key_arn,
            }
            if scheme == "multi":
                parameters.update(masterSecretArn=logins["master"].secret_arn, masterSecretKmsKeyArn=kms_key_arn)
            application = aws.serverlessrepository.CloudFormationStack(
                f"{name}-{scheme}", name=function_name(name_prefix, scheme), application_id=app_id,
                semantic_version=version, capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
                parameters=parameters, opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group(scheme)]))
            functions[scheme] = application.outputs.apply(lambda outputs: outputs["RotationLambdaARN"])
        functions["signing-keys"] = self._signing_keys_function(name, context, name_prefix, secret_key_arn,
                                                                kms_key_arn, log_group("signing-keys"))

        schedules = [(kind, login.secret_arn, login.scheme, settings.master_rotation_schedule if kind == "master"
                      else settings.rotation_schedule) for kind, login in logins.items()]
        schedules.append(("signing-keys", secret_key_arn, "signing-keys", settings.rotation_schedule))
        for label, secret_arn, scheme, schedule in schedules:
            aws.secretsmanager.SecretRotation(
                f"{name}-{label}", secret_id=secret_arn, rotation_lambda_arn=functions[scheme],
                rotation_rules={"schedule_expression": schedule, "duration": WINDOW},
                # At the first scheduled window, not at deploy time; Secrets Manager only runs the function's
                # testSecret step now, which logs in as the role: after the migration step made it.
                rotate_immediately=False, opts=pulumi.ResourceOptions(parent=self, depends_on=roles_exist))
        self.function_arns = functions
        self.register_outputs({"functions": functions})

    def _signing_keys_function(self, name: str, context: AwsContext, name_prefix: str,
                               secret_key_arn: pulumi.Input[str], kms_key_arn: pulumi.Input[str],
                               logs: aws.cloudwatch.LogGroup) -> pulumi.Output[str]:
        role = aws.iam.Role(f"{name}-signing-keys", description=f"{name_prefix}: rotates the Flask key set",
                            assume_role_policy=assume_role_policy("lambda.amazonaws.com", context),
                            opts=pulumi.ResourceOptions(parent=self))
        grant = aws.iam.RolePolicy(f"{name}-signing-keys", role=role.id, policy=pulumi.Output.all(
            secret_key_arn, kms_key_arn, logs.arn).apply(lambda arns: json.dumps(signing_keys_policy(*arns))),
            opts=pulumi.ResourceOptions(parent=role))
        # Relative to the working directory Pulumi runs the program in, so the input reads the same on every machine.
        code = os.path.relpath(SIGNING_KEYS_CODE)
        function = aws.lambda_.Function(
            f"{name}-signing-keys", name=function_name(name_prefix, "signing-keys"), role=role.arn,
            runtime="python3.12", architectures=["arm64"], handler="rotate_signing_keys.lambda_handler",
            timeout=30, memory_size=128, code=pulumi.AssetArchive({"rotate_signing_keys.py": pulumi.FileAsset(code)}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, grant]))
        aws.lambda_.Permission(f"{name}-signing-keys", action="lambda:InvokeFunction", function=function.name,
                               principal="secretsmanager.amazonaws.com", source_account=context.account_id,
                               source_arn=secret_key_arn, opts=pulumi.ResourceOptions(parent=function))
        return function.arn
