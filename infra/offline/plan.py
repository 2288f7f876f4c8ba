"""Offline plan: what a stack would create, without an AWS account or the Pulumi CLI.

    python -m infra.plan --stack prod              # tree under the components, counts, outputs, the checklist
    python -m infra.plan --stack prod --json       # {"stack", "resources", "outputs", "checklist"}
    python -m infra.plan --compare staging prod    # differences in topology and sizing (environment parity)

Runs the real program through the mock harness (harness.py here), the same way the tests do, then the policy
pack's rules (infra/policy) on what it declared. Exit codes: 0 fine, 1 a mandatory checklist rule is violated (or,
with --compare, a topology difference is not a listed exception), 2 invalid stack config (with the message).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pulumi

from infra.offline import harness

# The properties worth seeing in the tree, per resource type (everything is in --json).
KEY_PROPERTIES = {
    "pulumi:providers:aws": ["region"],
    "aws:ec2/vpc:Vpc": ["cidrBlock"],
    "aws:ec2/subnet:Subnet": ["cidrBlock", "ipv6CidrBlock", "availabilityZone"],
    "aws:ec2/route:Route": ["destinationCidrBlock", "destinationIpv6CidrBlock"],
    "aws:ec2/vpcEndpoint:VpcEndpoint": ["serviceName", "vpcEndpointType"],
    "aws:ec2/flowLog:FlowLog": ["trafficType"],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ["ipProtocol", "fromPort", "toPort", "cidrIpv4",
                                                                 "cidrIpv6", "referencedSecurityGroupId"],
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ["ipProtocol", "fromPort", "toPort", "cidrIpv4",
                                                               "cidrIpv6"],
    "aws:wafv2/webAcl:WebAcl": ["name", "scope"],
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration": ["minRetentionDays", "maxRetentionDays",
                                                                 "changeableForDays"],
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": ["rule.defaultRetention.mode",
                                                                           "rule.defaultRetention.days"],
    "aws:s3/bucketLogging:BucketLogging": ["targetPrefix"],
    "aws:kms/key:Key": ["region", "enableKeyRotation", "deletionWindowInDays"],
    "aws:secretsmanager/secret:Secret": ["namePrefix", "recoveryWindowInDays"],
    "aws:cloudwatch/logGroup:LogGroup": ["name", "retentionInDays"],
    "aws:rds/instance:Instance": ["identifier", "instanceClass", "engineVersion", "multiAz", "availabilityZone",
                                  "replicateSourceDb", "backupRetentionPeriod", "deletionProtection"],
    "aws:rds/parameterGroup:ParameterGroup": ["family"],
    "aws:elasticache/replicationGroup:ReplicationGroup": ["replicationGroupId", "nodeType", "numCacheClusters",
                                                          "automaticFailoverEnabled", "multiAzEnabled"],
    "aws:backup/vault:Vault": ["region", "name"],
    "aws:backup/plan:Plan": ["name"],
    "aws:ecr/repository:Repository": ["name", "imageTagMutability"],
    "docker:index/image:Image": ["imageName"],
    "aws:lb/loadBalancer:LoadBalancer": ["ipAddressType", "idleTimeout", "enableDeletionProtection"],
    "aws:lb/targetGroup:TargetGroup": ["targetType", "port", "deregistrationDelay"],
    "aws:lb/listener:Listener": ["port", "protocol", "sslPolicy"],
    "aws:acm/certificate:Certificate": ["domainName", "validationMethod"],
    "aws:route53/record:Record": ["name", "type"],
    "aws:ecs/cluster:Cluster": ["name"],
    "aws:ecs/taskDefinition:TaskDefinition": ["family", "cpu", "memory"],
    "aws:ecs/service:Service": ["name", "desiredCount"],
    "aws:secretsmanager/secretRotation:SecretRotation": ["rotationRules.scheduleExpression", "rotateImmediately"],
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": ["name", "semanticVersion"],
    "aws:lambda/function:Function": ["name", "runtime"],
    "aws:appautoscaling/target:Target": ["minCapacity", "maxCapacity"],
    "aws:appautoscaling/policy:Policy": ["policyType"],
}


def warnings(run: harness.Run) -> list[str]:
    """What the plan flags: choices a stack file made that are fine in dev and wrong anywhere else."""
    found = []
    for listener in run.of_type("aws:lb/listener:Listener"):
        actions = listener.inputs.get("defaultActions") or []
        if listener.inputs.get("protocol") == "HTTP" and any(a.get("type") == "forward" for a in actions):
            found.append(f"{listener.name}: plain HTTP is served (loadBalancer.allowHttp); no TLS, no HSTS")
    if run.of_type("aws:sns/topic:Topic") and not run.of_type("aws:sns/topicSubscription:TopicSubscription"):
        found.append("the alarm topic has no subscriber (monitoring.alarmEmails): alarms notify nobody")
    for acl in run.of_type("aws:wafv2/webAcl:WebAcl"):
        counting = [rule["name"] for rule in acl.inputs.get("rules") or []
                    if rule.get("overrideAction") == {"count": {}} or rule.get("action") == {"count": {}}]
        counting += [f"{rule['name']}/{override['name']}" for rule in acl.inputs.get("rules") or []
                     for override in ((rule.get("statement") or {}).get("managedRuleGroupStatement") or {}).get(
                         "ruleActionOverrides") or []]
        if counting:
            found.append(f"{acl.name}: {', '.join(counting)} only count (firewall.mode, firewall.countRules): "
                         "what they match reaches the application")
    for task in run.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        for container in json.loads(task.inputs["containerDefinitions"]):
            if not container.get("readonlyRootFilesystem"):
                found.append(f"{task.name}: container {container['name']} has a writable root filesystem "
                             "(service.ecsExec needs one)")
    return found


def containers(task: harness.Recorded) -> list[str]:
    """A task definition's containers, one line each: what runs, in which order, with which login and TLS."""
    lines = []
    for c in json.loads(task.inputs["containerDefinitions"]):
        env = {e["name"]: e["value"] for e in c.get("environment", [])}
        parts = [f"container {c['name']}:", "essential" if c.get("essential", True) else "runs first, then exits"]
        if c.get("command"):
            parts.append(f"runs `{' '.join(c['command'])}`")
        parts += [f"after {d['containerName']} ({d['condition']})" for d in c.get("dependsOn", [])]
        if env.get("DATABASE_SSLMODE"):
            parts.append(f"DATABASE_SSLMODE={env['DATABASE_SSLMODE']}")
        injected = sorted(secret["name"] for secret in c.get("secrets", []))
        parts.append(f"injected: {', '.join(injected)}" if injected else "nothing injected")
        reads = sorted(name for name in env if name.endswith("_SECRET_ARN"))
        if reads:
            parts.append(f"reads itself: {', '.join(reads)}")
        lines.append(" ".join(parts[:1]) + " " + "; ".join(parts[1:]))
    return lines


def tree(run: harness.Run) -> str:
    urns = {r.urn for r in run.resources}
    lines = [f"Plan of stack '{run.stack}' ({run.project}, {run.region}): {len(run.resources)} resources", ""]

    def show(resource: harness.Recorded, depth: int) -> None:
        props = [f"{key}={_short(value)}" for key in KEY_PROPERTIES.get(resource.type, [])
                 if (value := _at(resource.redacted, key)) not in (None, "", [])]
        flags = " [protected]" if resource.protect else ""
        lines.append(f"{'  ' * depth}- {resource.name} ({resource.type}){flags}  {' '.join(props)}".rstrip())
        if resource.type == "aws:ecs/taskDefinition:TaskDefinition":
            lines.extend(f"{'  ' * (depth + 1)}  {line}" for line in containers(resource))
        for child in run.children(resource):
            show(child, depth + 1)

    for resource in run.resources:
        if resource.parent not in urns:
            show(resource, 0)
    lines += ["", "Resources by type:"]
    lines += [f"  {count:4d}  {type_}" for type_, count in run.counts().items()]
    flagged = warnings(run)
    if flagged:
        lines += ["", "Warnings:"] + [f"  ! {w}" for w in flagged]
    lines += ["", "Outputs:"]
    outputs = run.as_json()["outputs"]
    lines += [f"  {key}: {_short(value, 200)}" for key, value in outputs.items()]
    return "\n".join(lines)


def _at(values: dict, key: str):
    """A property by its name, or a nested one by a dotted name (rotationRules.scheduleExpression)."""
    for part in key.split("."):
        values = values.get(part) if isinstance(values, dict) else None
    return values


def _short(value, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml")
    which.add_argument("--compare", nargs=2, metavar=("STACK", "REFERENCE"),
                       help="compare two stacks' plans, e.g. staging prod")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tree")
    parser.add_argument("--project-dir", type=Path, default=harness.ROOT,
                        help="folder with Pulumi.yaml, the stack files and infra/ (default: this repository)")
    args = parser.parse_args(argv)
    try:
        runs = [harness.run_stack(stack, root=args.project_dir) for stack in (args.compare or [args.stack])]
    except (pulumi.RunError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.compare:
        from infra.offline import parity

        rows = parity.explain(*runs)
        print(parity.report(*runs, rows))
        return 0 if all(row.deliberate for row in rows) else 1
    from infra.offline.checklist import checklist, evaluate

    run = runs[0]
    verdicts = evaluate(run)
    if args.json:
        print(json.dumps({**run.as_json(), "checklist": [
            {"policy": v.policy, "level": v.level.value, "violations": v.violations} for v in verdicts]}, indent=2))
    else:
        print(tree(run) + "\n\n" + checklist(verdicts))
    return 1 if any(v.blocking for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
