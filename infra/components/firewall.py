"""AWS WAF in front of the load balancer: AWS's managed rule groups, a rate limit per client address and the body
limit, answering blocked clients in the application's JSON, logging every request with credentials redacted."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.catalog import WAF_RULE_GROUPS
from infra.components import AwsContext, policy, type_token
from infra.settings import FirewallSettings

# Headers that carry credentials: never written to the firewall's log.
REDACTED_HEADERS = ("authorization", "cookie")
RATE_LIMITED, TOO_LARGE = "rate-limited", "too-large"


def web_acl_name(name_prefix: str) -> str:
    """The web ACL's name, which its CloudWatch metrics are dimensioned by (monitoring names it before it exists)."""
    return f"{name_prefix}-web-acl"


def log_group_name(name_prefix: str) -> str:
    """AWS WAF logs only to destinations whose name starts with aws-waf-logs-."""
    return f"aws-waf-logs-{name_prefix}"


def response_bodies(max_body_bytes: int) -> list[dict]:
    """The answers a blocked client gets, in the shape of the application's own errors."""
    bodies = {
        RATE_LIMITED: {"error": "too_many_requests",
                       "message": "Too many requests from this address; retry after Retry-After seconds."},
        TOO_LARGE: {"error": "request_entity_too_large",
                    "message": f"The request body is larger than {max_body_bytes} bytes."},
    }
    return [{"key": key, "content": json.dumps(body), "content_type": "APPLICATION_JSON"}
            for key, body in bodies.items()]


def rules(settings: FirewallSettings, name_prefix: str, max_body_bytes: int) -> list[dict]:
    """The web ACL's rules in evaluation order: the rate limit first (cheapest, stops floods), then the managed
    groups, the body limit after the IP reputation list. In count mode every rule only counts."""
    blocking = settings.mode == "block"

    def visibility(label: str) -> dict:
        return {"cloudwatch_metrics_enabled": True, "metric_name": f"{name_prefix}-{label}",
                "sampled_requests_enabled": True}

    def action(status: int, body_key: str, **headers: str) -> dict:
        if not blocking:
            return {"count": {}}
        response = {"response_code": status, "custom_response_body_key": body_key}
        if headers:
            response["response_headers"] = [{"name": k.replace("_", "-"), "value": v} for k, v in headers.items()]
        return {"block": {"custom_response": response}}

    found = [{
        "name": "rate-limit-per-address",
        "action": action(429, RATE_LIMITED, Retry_After=str(settings.rate_window_seconds)),
        "statement": {"rate_based_statement": {"limit": settings.rate_limit, "aggregate_key_type": "IP",
                                               "evaluation_window_sec": settings.rate_window_seconds}},
        "visibility_config": visibility("rate-limit"),
    }]
    for group in WAF_RULE_GROUPS:
        statement = {"vendor_name": "AWS", "name": group}
        tuned = [rule.split("/", 1)[1] for rule in settings.count_rules if rule.split("/", 1)[0] == group]
        if tuned:  # these rules only count; the group's other rules keep their actions
            statement["rule_action_overrides"] = [{"name": rule, "action_to_use": {"count": {}}} for rule in tuned]
        found.append({"name": group, "override_action": {"none": {}} if blocking else {"count": {}},
                      "statement": {"managed_rule_group_statement": statement},
                      "visibility_config": visibility(group)})
        if group == "AWSManagedRulesAmazonIpReputationList":
            # A body the load balancer does not hand over whole (over 8 KB) counts as too large (MATCH): no part
            # of a request reaches the application uninspected.
            found.append({
                "name": "body-limit",
                "action": action(413, TOO_LARGE),
                "statement": {"size_constraint_statement": {
                    "comparison_operator": "GT", "size": max_body_bytes,
                    "field_to_match": {"body": {"oversize_handling": "MATCH"}},
                    "text_transformations": [{"priority": 0, "type": "NONE"}]}},
                "visibility_config": visibility("body-limit"),
            })
    return [{**rule, "priority": i} for i, rule in enumerate(found)]


def log_delivery_policy(context: AwsContext, log_group_arn: str) -> dict:
    """CloudWatch Logs lets AWS's log delivery write the firewall's log group, for this account's sources only
    (declared here, so AWS WAF does not add an account-wide policy of its own)."""
    return policy({
        "Sid": "WafLogDelivery", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{log_group_arn}:*",
        "Condition": {"StringEquals": {"aws:SourceAccount": context.account_id},
                      "ArnLike": {"aws:SourceArn": context.arn("logs", "*")}},
    })


class WebFirewall(pulumi.ComponentResource):
    """A regional web ACL on the load balancer, its log group (KMS, retention) and logging configuration."""

    def __init__(self, name: str, settings: FirewallSettings, *, context: AwsContext, name_prefix: str,
                 load_balancer_arn: pulumi.Input[str], max_body_bytes: int, logs_key_arn: pulumi.Input[str],
                 log_retention_days: int, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("firewall", "WebFirewall"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-acl", name=web_acl_name(name_prefix), scope="REGIONAL",
            description=f"{name_prefix}: managed rules, rate limit, body limit, mode {settings.mode}",
            default_action={"allow": {}}, rules=rules(settings, name_prefix, max_body_bytes),
            custom_response_bodies=response_bodies(max_body_bytes),
            visibility_config={"cloudwatch_metrics_enabled": True, "metric_name": web_acl_name(name_prefix),
                               "sampled_requests_enabled": True}, opts=child)
        aws.wafv2.WebAclAssociation(f"{name}-on-load-balancer", resource_arn=load_balancer_arn,
                                    web_acl_arn=self.web_acl.arn, opts=pulumi.ResourceOptions(parent=self.web_acl))

        log_group = aws.cloudwatch.LogGroup(f"{name}-logs", name=log_group_name(name_prefix),
                                            retention_in_days=log_retention_days, kms_key_id=logs_key_arn, opts=child)
        delivery = aws.cloudwatch.LogResourcePolicy(
            f"{name}-log-delivery", policy_name=f"{name_prefix}-waf-log-delivery",
            policy_document=log_group.arn.apply(lambda arn: json.dumps(log_delivery_policy(context, arn))),
            opts=pulumi.ResourceOptions(parent=log_group))
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging", resource_arn=self.web_acl.arn, log_destination_configs=[log_group.arn],
            redacted_fields=[{"single_header": {"name": header}} for header in REDACTED_HEADERS],
            opts=pulumi.ResourceOptions(parent=self.web_acl, depends_on=[delivery]))

        self.web_acl_name = self.web_acl.name
        self.register_outputs({"web_acl_arn": self.web_acl.arn, "log_group": log_group.name})
