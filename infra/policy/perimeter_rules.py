"""The perimeter's rules: the firewall in front of the public load balancer, narrow egress, endpoint policies, trust
policies scoped to this account, explicit key policies, and backups nobody can delete early."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

from pulumi_policy import ResourceValidationArgs, StackValidationArgs

from infra.catalog import ECR_LAYER_BUCKET_PATTERN, WAF_ALB_BODY_LIMIT_BYTES, WAF_RULE_GROUPS
from infra.policy.props import Report, as_list, of_type, required

# The service principals AWS documents as naming the resource they act for (aws:SourceArn) whenever they assume a
# role, so a trust policy must name it: RDS (the instance), EventBridge Scheduler (the schedule group), VPC flow logs.
# ECS names the task for a task role (the stack's task roles name it), but AWS documents no source for the execution
# role it assumes to start a task, so the rule cannot require one of ecs-tasks.
NAMES_ITS_SOURCE = {"monitoring.rds.amazonaws.com", "scheduler.amazonaws.com", "vpc-flow-logs.amazonaws.com"}
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


def _pinned(statement: dict, *keys: str) -> bool:
    """Does the statement hold one of `keys` to exact values (StringEquals, no wildcard)?"""
    tests = {k.lower(): v for k, v in ((statement.get("Condition") or {}).get("StringEquals") or {}).items()}
    return any(key in tests and as_list(tests[key]) and not any("*" in str(v) or "?" in str(v)
                                                                  for v in as_list(tests[key])) for key in keys)


def _aws_owned_read(statement: dict) -> bool:
    """Reading ECR's layer bucket: the one thing a VPC endpoint allows without naming the caller's account (the
    layers come through a URL ECR's own account presigned)."""
    return as_list(statement.get("Action")) == ["s3:GetObject"] and all(
        fnmatchcase(str(r), ECR_LAYER_BUCKET_PATTERN) for r in as_list(statement.get("Resource")))


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
                  if (statement(r, "managedRuleGroupStatement") or {}).get("vendorName") == "AWS"}
        missing = [group for group in WAF_RULE_GROUPS if group not in groups]
        if missing:
            report(f"web ACL {acl.name} lacks AWS's managed rule groups {', '.join(missing)}", None)
        for rule in rules:
            if "allow" in (rule.get("action") or {}):
                report(f"web ACL {acl.name}: rule {rule.get('name')} allows what it matches past every later rule",
                       None)
        limits = [r for r in rules if (statement(r, "rateBasedStatement") or {}).get("aggregateKeyType") == "IP"]
        sizes = [r for r in rules if (statement(r, "sizeConstraintStatement") or {}).get("comparisonOperator") == "GT"
                 and (statement(r, "sizeConstraintStatement") or {}).get("size", 1 << 62) <= WAF_ALB_BODY_LIMIT_BYTES
                 and ((statement(r, "sizeConstraintStatement").get("fieldToMatch") or {}).get("body") or {}).get(
                     "oversizeHandling") == "MATCH"]
        if not limits:
            report(f"web ACL {acl.name} has no rate limit per client address", None)
        if not sizes:
            report(f"web ACL {acl.name} does not hold request bodies to what it can inspect "
                   f"({WAF_ALB_BODY_LIMIT_BYTES} bytes, larger ones matching)", None)
        if blocking:
            for rule in limits + sizes:
                if "block" not in (rule.get("action") or {}):
                    report(f"web ACL {acl.name}: rule {rule.get('name')} only counts; this tier blocks", None)
            counted = [name for name, r in groups.items() if "none" not in (r.get("overrideAction") or {})]
            if counted:
                report(f"web ACL {acl.name}: {', '.join(counted)} only count; this tier blocks (count single rules "
                       "with firewall.countRules)", None)
        logging = next((entry for entry in loggings if _linked(entry, [acl], "resourceArn")), None)
        redacted = {(field.get("singleHeader") or {}).get("name", "").lower()
                    for field in (logging.props.get("redactedFields") or [] if logging else [])}
        if not logging:
            report(f"web ACL {acl.name} logs nothing", None)
        elif {"authorization", "cookie"} - redacted:
            report(f"web ACL {acl.name} logs the {', '.join(sorted({'authorization', 'cookie'} - redacted))} "
                   "header: redact it", None)


def narrow_egress(args: ResourceValidationArgs, report: Report) -> None:
    """Egress to an address range is HTTPS (443) only; every other port goes to a named security group; never all
    traffic, never an inline rule (IPv4 and IPv6 alike). Judged on what the program declares: a group's state lists
    every rule it has, its separate rules too."""
    props = args.props
    if args.resource_type == "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":
        ports = (props.get("fromPort"), props.get("toPort"))
        if str(props.get("ipProtocol")) in ("-1", "all"):
            report(f"egress rule {args.name} allows all traffic", None)
        elif props.get("cidrIpv4") or props.get("cidrIpv6"):
            if str(props.get("ipProtocol")) != "tcp" or ports != (443, 443):
                report(f"egress rule {args.name} sends {props.get('ipProtocol')} {ports[0]}-{ports[1]} to "
                       f"{props.get('cidrIpv4') or props.get('cidrIpv6')}: only HTTPS (443) may go to an address "
                       "range; other ports to a security group", None)
        elif not (props.get("referencedSecurityGroupId") or props.get("prefixListId")):
            report(f"egress rule {args.name} names no destination", None)
        elif ports[0] != ports[1]:
            report(f"egress rule {args.name} opens ports {ports[0]}-{ports[1]}: one port per rule", None)
    elif args.resource_type in ("aws:ec2/securityGroup:SecurityGroup",
                                "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup") and props.get("egress"):
        report(f"security group {args.name} has inline egress rules: declare each as a SecurityGroupEgressRule",
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
            if statement.get("Effect") == "Allow" and _anyone(statement.get("Principal")) and not (
                    _pinned(statement, "aws:principalaccount", "aws:principalorgid") or _aws_owned_read(statement)):
                report(f"endpoint {endpoint.name}: statement {statement.get('Sid', '')} lets any principal through; "
                       "hold aws:PrincipalAccount to this account (StringEquals)", None)


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
        if not _pinned(statement, "aws:sourceaccount") or not all(
                str(v).isdigit() and len(str(v)) == 12 for v in as_list(keys.get("aws:sourceaccount"))):
            report(f"role {args.name}: {', '.join(services)} may assume it for any account (hold aws:SourceAccount "
                   "to the account, StringEquals)", None)
        unnamed = [s for s in services if s in NAMES_ITS_SOURCE]
        if unnamed and (not keys.get("aws:sourcearn") or "*" in as_list(keys.get("aws:sourcearn"))):
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
        if _anyone(principal) and not _pinned(statement, "kms:calleraccount", "aws:principalaccount"):
            report(f"key {args.name}: statement {sid} lets anyone use the key: hold kms:CallerAccount to the "
                   "account", None)
        if any(a in ("kms:CreateGrant", "kms:*", "*") for a in actions) and isinstance(principal, dict) and \
                principal.get("AWS") and str(keys.get("kms:grantisforawsresource", "")).lower() != "true":
            report(f"key {args.name}: statement {sid} lets the account grant use of the key to anyone, not only to "
                   "AWS resources (kms:GrantIsForAWSResource)", None)
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
