"""One ComponentResource per concept. Components take settings objects and other components' outputs; they never
read config and never ask which environment they are in."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Type tokens are `<package>:<module>:<Name>`. The package is fixed rather than read from Pulumi.yaml so that
# renaming the project does not change every component's URN (which would replace the whole stack).
PACKAGE = "flask-aws"


def type_token(module: str, name: str) -> str:
    return f"{PACKAGE}:{module}:{name}"


@dataclass(frozen=True)
class AwsContext:
    """Where the stack runs: what IAM and KMS policies need to name the account, partition and region."""

    account_id: str
    partition: str
    region: str
    dns_suffix: str = "amazonaws.com"
    elb_account_arn: str | None = None  # the regional ELB account that writes access logs (older regions only)

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        """An ARN in this account and region (pass region="" for global services such as IAM)."""
        return (f"arn:{self.partition}:{service}:{self.region if region is None else region}:"
                f"{self.account_id if account is None else account}:{resource}")

    @property
    def root_principal(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:root"


def policy(*statements: dict) -> dict:
    """An IAM policy document (pass it through pulumi.Output.json_dumps when it holds outputs)."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def assume_role_policy(service: str, context: AwsContext, source_arn: str | list[str] | None = None) -> str:
    """Trust policy letting one AWS service assume a role for this account only (aws:SourceAccount), and, where the
    service names the resource it acts for, for these resources only (aws:SourceArn): no other account can have
    the service act with the role (the confused deputy). The policy pack's scoped-trust-policies rule knows which
    services name a source."""
    condition: dict = {"StringEquals": {"aws:SourceAccount": context.account_id}}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    return json.dumps(policy({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole",
                              "Condition": condition}))


def task_role_trust(context: AwsContext) -> str:
    """A task role: ECS names the task, in this region and account, as the source (a cluster cannot be named, AWS
    documents). An execution role is assumed for this account only: AWS documents no source for it."""
    return assume_role_policy("ecs-tasks.amazonaws.com", context, context.arn("ecs", "*"))


def reachable_only_from(name: str, *, vpc_id: pulumi.Input[str], port: int,
                        sources: dict[str, tuple[str, pulumi.Input[str]]], service: str, tag_name: str,
                        parent: pulumi.Resource, moved: dict[str, pulumi.Alias] | None = None) -> aws.ec2.SecurityGroup:
    """A security group admitting one TCP port from the given security groups (label -> (who, group id)), and
    nothing else (no egress); each source group may send to it on that port, and only there. `moved` names, by
    label, where such an egress rule was declared before (EC2 refuses the same rule twice: it must move, not be
    created anew)."""
    group = aws.ec2.SecurityGroup(name, vpc_id=vpc_id, description=f"{service}: only from the application",
                                  tags={"Name": tag_name}, opts=pulumi.ResourceOptions(parent=parent))
    base = name.removesuffix("-sg")
    for label, (who, source) in sources.items():
        aws.vpc.SecurityGroupIngressRule(f"{base}-from-{label}", security_group_id=group.id,
                                         ip_protocol="tcp", from_port=port, to_port=port,
                                         referenced_security_group_id=source,
                                         description=f"{service} from {who}",
                                         opts=pulumi.ResourceOptions(parent=group))
        aws.vpc.SecurityGroupEgressRule(f"{base}-to-{label}", security_group_id=source, ip_protocol="tcp",
                                        from_port=port, to_port=port, referenced_security_group_id=group.id,
                                        description=f"{who.capitalize()} to {service}",
                                        opts=pulumi.ResourceOptions(
                                            parent=group, aliases=[moved[label]] if label in (moved or {}) else []))
    return group
