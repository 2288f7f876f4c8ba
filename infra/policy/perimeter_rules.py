"""The perimeter's rules: the firewall in front of the public load balancer, narrow egress, endpoint policies, trust
policies scoped to this account, explicit key policies, and backups nobody can delete early."""

from __future__ import annotations

import json

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from infra.catalog import WAF_RULE_GROUPS
from infra.policy.props import Report, as_list, of_type, required

# The service principals that name the resource they act for (aws:SourceArn) when they assume a role, so a trust
# policy can name it: ECS (the task), RDS (the instance), EventBridge Scheduler (the schedule group), VPC flow logs.
NAMES_ITS_SOURCE = {"ecs-tasks.amazonaws.com", "monitoring.rds.amazonaws.com", "scheduler.amazonaws.com",
                    "vpc-flow-logs.amazonaws.com"}
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
CRYPTO_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt", "kms:GenerateDataKey", "kms:Sign", "kms:Verify",
                  "kms:GenerateMac", "kms:VerifyMac", "kms:DeriveSharedSecret")
ADMIN_WRITES = ("kms:Put", "kms:Create", "kms:Delete", "kms:Update", "kms:Enable", "kms:Disable", "kms:Schedule",
                "kms:Cancel", "kms:Revoke", "kms:Tag", "kms:Untag", "kms:Rotate", "kms:Import", "kms:Replicate")


def _document(value) -> dict:
    return json.loads(value) if isinstance(value, str) else (value or {})


def _conditions(statement: dict) -> dict:
    """Condition keys (lower case) -> values, whatever the operator."""
    return {key.lower(): value for test in (statement.get("Condition") or {}).values() for key, value in test.items()}


def _anyone(principal) -> bool:
    return principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS")))


def _linked(resource, others, key: str, prop: str = "arn"):
    """The one of `others` that `resource`'s input `key` was computed from, as the engine records it; without that
    record (a value given as text), the one it names."""
    sources = resource.property_dependencies.get(key)
    if sources:
        return next((o for o in others if o in sources), None)
    value = resource.props.get(key)
    return next((o for o in others if value and value in (o.props.get(prop), o.props.get("id"))), None)


def waf_on_public_load_balancer(args: StackValidationArgs, report: Report) -> None:
    """Every internet-facing load balancer has a web ACL with AWS's managed rule groups, a rate limit per address
    and a body limit, logging with credentials redacted; where the tier blocks, they block."""
    acls = of_type(args.resources, "aws:wafv2/webAcl:WebAcl")
    associations = of_type(args.resources, "aws:wafv2/webAclAssociation:WebAclAssociation")
    loggings = of_type(args.resources, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    blocking = required(args, "firewall.mode") == "block"
    for lb in of_type(args.resources, "aws:lb/loadBalancer:LoadBalancer"):
        if lb.props.get("internal"):
            continue
        association = next((a for a in associations if _linked(a, [lb], "resourceArn")), None)
        acl = association and _linked(association, acls, "webAclArn")
        if not acl:
            report(f"load balancer {lb.name} faces the internet without AWS WAF", None)
            continue
        rules = acl.props.get("rules") or []

        def statement(rule, kind):
            return (rule.get("statement") or {}).get(kind)
        groups = {statement(r, "managedRuleGroupStatement").get("name"): r for r in rules
                  if statement(r, "managedRuleGroupStatement")}
        missing = [group for group in WAF_RULE_GROUPS if group not in groups]
        if missing:
            report(f"web ACL {acl.name} lacks AWS's managed rule groups {', '.join(missing)}", None)
        limits = [r for r in rules if statement(r, "rateBasedStatement")]
        sizes = [r for r in rules if "body" in ((statement(r, "sizeConstraintStatement") or {}).get("fieldToMatch")
                                                 or {})]
        if not limits:
            report(f"web ACL {acl.name} has no rate limit per client address", None)
        if not sizes:
            report(f"web ACL {acl.name} does not limit request bodies", None)
        if blocking:
            for rule in limits + sizes:
                if "block" not in (rule.get("action") or {}):
                    report(f"web ACL {acl.name}: rule {rule.get('name')} only counts; this tier blocks", None)
            if groups and all("count" in (r.get("overrideAction") or {}) for r in groups.values()):
                report(f"web ACL {acl.name}: every managed rule group only counts; this tier blocks", None)
        logging = next((entry for entry in loggings if _linked(entry, [acl], "resourceArn")), None)
        redacted = {(field.get("singleHeader") or {}).get("name", "").lower()
                    for field in (logging.props.get("redactedFields") or [] if logging else [])}
        if not logging:
            report(f"web ACL {acl.name} logs nothing", None)
        elif {"authorization", "cookie"} - redacted:
            report(f"web ACL {acl.name} logs the {', '.join(sorted({'authorization', 'cookie'} - redacted))} "
                   "header: redact it", None)


def narrow_egress(args: StackValidationArgs, report: Report) -> None:
    """Egress to an address range is HTTPS (443) only; every other port goes to a named security group; never all
    traffic, never an inline rule (IPv4 and IPv6 alike)."""
    for rule in of_type(args.resources, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"):
        props = rule.props
        ports = (props.get("fromPort"), props.get("toPort"))
        if str(props.get("ipProtocol")) in ("-1", "all"):
            report(f"egress rule {rule.name} allows all traffic", None)
        elif props.get("cidrIpv4") or props.get("cidrIpv6"):
            if str(props.get("ipProtocol")) != "tcp" or ports != (443, 443):
                report(f"egress rule {rule.name} sends {props.get('ipProtocol')} {ports[0]}-{ports[1]} to "
                       f"{props.get('cidrIpv4') or props.get('cidrIpv6')}: only HTTPS (443) may go to an address "
                       "range; other ports to a security group", None)
        elif not (props.get("referencedSecurityGroupId") or props.get("prefixListId")):
            report(f"egress rule {rule.name} names no destination", None)
        elif ports[0] != ports[1]:
            report(f"egress rule {rule.name} opens ports {ports[0]}-{ports[1]}: one port per rule", None)
    for group in of_type(args.resources, "aws:ec2/securityGroup:SecurityGroup") + of_type(
            args.resources, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
        if group.props.get("egress"):
            report(f"security group {group.name} has inline egress rules: declare each as a SecurityGroupEgressRule",
                   None)


def endpoint_policies(args: StackValidationArgs, report: Report) -> None:
    """Every VPC endpoint has a policy, and whatever it lets anyone do, it lets only this account's (or
    organization's) principals do."""
    policies = of_type(args.resources, "aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy")
    for endpoint in of_type(args.resources, "aws:ec2/vpcEndpoint:VpcEndpoint"):
        attached = next((p for p in policies if _linked(p, [endpoint], "vpcEndpointId", "id")), None)
        document = _document(endpoint.props.get("policy") or (attached.props.get("policy") if attached else None))
        if not document:
            report(f"endpoint {endpoint.name} ({endpoint.props.get('serviceName')}) has no policy: anything in the "
                   "VPC may use it with any account's credentials on any account's resources", None)
            continue
        for statement in document.get("Statement", []):
            keys = _conditions(statement)
            if statement.get("Effect") == "Allow" and _anyone(statement.get("Principal")) and not (
                    "aws:principalaccount" in keys or "aws:principalorgid" in keys):
                report(f"endpoint {endpoint.name}: statement {statement.get('Sid', '')} lets any principal through; "
                       "name this account (aws:PrincipalAccount)", None)


def scoped_trust_policies(args: ResourceValidationArgs, report: Report) -> None:
    """A role a service assumes is assumed for this account only (aws:SourceAccount), and for the named resources
    where the service names them (aws:SourceArn)."""
    if args.resource_type != "aws:iam/role:Role":
        return
    for statement in _document(args.props.get("assumeRolePolicy")).get("Statement", []):
        services = as_list((statement.get("Principal") or {}).get("Service")) if isinstance(
            statement.get("Principal"), dict) else []
        if statement.get("Effect") != "Allow" or not services:
            continue
        keys = _conditions(statement)
        if "aws:sourceaccount" not in keys:
            report(f"role {args.name}: {', '.join(services)} may assume it for any account (no aws:SourceAccount)",
                   None)
        unnamed = [s for s in services if s in NAMES_ITS_SOURCE]
        if unnamed and "aws:sourcearn" not in keys:
            report(f"role {args.name}: {', '.join(unnamed)} names its source; the trust policy should too "
                   "(aws:SourceArn)", None)


def explicit_key_policies(args: ResourceValidationArgs, report: Report) -> None:
    """Every KMS key has its own policy: administration and use in separate statements, use only through AWS
    services, nobody without a condition, and CloudWatch Logs only for the stack's log groups."""
    if args.resource_type != "aws:kms/key:Key":
        return
    document = _document(args.props.get("policy"))
    if not document:
        report(f"key {args.name} has the default key policy: say who administers it and who uses it how", None)
        return
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = as_list(statement.get("Action"))
        sid = statement.get("Sid", "(no Sid)")
        principal = statement.get("Principal")
        keys = _conditions(statement)
        crypto = [a for a in actions if a.startswith(CRYPTO_ACTIONS)]
        if "kms:*" in actions or "*" in actions or (crypto and any(a.startswith(ADMIN_WRITES) for a in actions)):
            report(f"key {args.name}: statement {sid} both administers and uses the key", None)
        if _anyone(principal) and not keys:
            report(f"key {args.name}: statement {sid} lets anyone use the key, with no condition", None)
        if crypto and isinstance(principal, dict) and principal.get("AWS") and "kms:viaservice" not in keys:
            report(f"key {args.name}: statement {sid} lets the account use the key directly, not only through the "
                   "services that hold its data (kms:ViaService)", None)
        if isinstance(principal, dict) and any(str(s).startswith("logs.") for s in as_list(principal.get("Service"))):
            groups = as_list(keys.get("kms:encryptioncontext:aws:logs:arn"))
            if not groups or any(str(g).endswith((":*", "log-group:*")) for g in groups):
                report(f"key {args.name}: CloudWatch Logs may use it for every log group of the account; name the "
                       "stack's log groups", None)


def immutable_backups(args: StackValidationArgs, report: Report) -> None:
    """Snapshots sit in vaults under AWS Backup Vault Lock; the dumps bucket keeps every object under S3 Object Lock
    (where the tier requires it) and logs every access."""
    locks = of_type(args.resources, "aws:backup/vaultLockConfiguration:VaultLockConfiguration")
    for vault in of_type(args.resources, "aws:backup/vault:Vault"):
        lock = next((entry for entry in locks if _linked(entry, [vault], "backupVaultName", "name")), None)
        if not lock or not lock.props.get("minRetentionDays"):
            report(f"vault {vault.props.get('name') or vault.name} has no Vault Lock with a minimum retention: "
                   "anyone allowed to delete recovery points can empty it", None)
    object_locks = of_type(args.resources, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    logging = of_type(args.resources, "aws:s3/bucketLogging:BucketLogging")
    for bucket in of_type(args.resources, "aws:s3/bucket:Bucket"):
        if (bucket.props.get("tags") or {}).get("Purpose") != "database backups":
            continue
        lock = next((entry for entry in object_locks if _linked(entry, [bucket], "bucket", "bucket")), None)
        days = (((lock.props.get("rule") or {}).get("defaultRetention") or {}).get("days") if lock else None)
        if required(args, "backups.objectLock") and not days:
            report(f"bucket {bucket.name} (database backups) has no Object Lock default retention: anyone allowed "
                   "to delete objects can delete the dumps", None)
        if not any(_linked(entry, [bucket], "bucket", "bucket") for entry in logging):
            report(f"bucket {bucket.name} (database backups) has no access log: reads of the dumps go unrecorded",
                   None)
