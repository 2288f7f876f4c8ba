"""WebFirewall: AWS WAF on the load balancer. The web ACL is validated as the CreateWebACL call it becomes
(botocore's model), blocked clients get the application's JSON errors, the log redacts credentials."""

from __future__ import annotations

import copy
import json

import pytest

from infra.catalog import WAF_RULE_GROUPS
from infra.components.firewall import WebFirewall, log_group_name, web_acl_name
from infra.offline import harness
from tests.infra.checks import waf_logging_problems, web_acl_problems
from tests.infra.conftest import CONTEXT, LOGS_KEY_ARN, settings_for

ALB_ARN = f"arn:aws:elasticloadbalancing:eu-west-1:{harness.ACCOUNT}:loadbalancer/app/flask-aws-prod/0123456789abcdef"


def build(tier="prod", **firewall) -> harness.Run:
    s = settings_for(tier, firewall=firewall)
    return harness.run(lambda: WebFirewall(
        "firewall", s.firewall, context=CONTEXT, name_prefix=f"flask-aws-{tier}", load_balancer_arn=ALB_ARN,
        max_body_bytes=s.service.max_body_bytes, logs_key_arn=LOGS_KEY_ARN, log_retention_days=90))


def acl(run) -> dict:
    return run.one("aws:wafv2/webAcl:WebAcl").inputs


def rules(run) -> dict[str, dict]:
    return {rule["name"]: rule for rule in acl(run)["rules"]}


@pytest.mark.parametrize("tier", ["dev", "staging", "prod"])
def test_the_web_acl_is_a_valid_create_web_acl_call(tier):
    run = build(tier)
    assert web_acl_problems(acl(run)) == ""
    assert waf_logging_problems(run.one("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
                                .inputs) == ""


def test_a_broken_rule_is_caught_by_the_model_check():
    broken = copy.deepcopy(acl(build()))
    broken["rules"][0]["statement"]["rateBasedStatement"]["aggregateKeyType"] = "COOKIE"  # not a key type
    broken["rules"][1].pop("visibilityConfig")  # required
    broken["description"] = "flask-aws-prod: rules (block)"  # WAF's pattern takes no parentheses: AWS refuses it
    report = web_acl_problems(broken)
    assert "'COOKIE' is not one of" in report and "CreateWebACL.Description: 'flask-aws-prod: rules (block)' does " \
        "not match" in report
    assert "Missing required parameter" in report and "VisibilityConfig" in report


def test_managed_groups_rate_limit_and_body_limit_in_order_and_blocking_in_prod():
    run = build()
    ordered = sorted(acl(run)["rules"], key=lambda rule: rule["priority"])
    assert [rule["name"] for rule in ordered] == [
        "rate-limit-per-address", "AWSManagedRulesAmazonIpReputationList", "body-limit",
        "AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet"]
    assert [rule["priority"] for rule in ordered] == list(range(6))
    by_name = rules(run)
    for group in WAF_RULE_GROUPS:
        assert by_name[group]["statement"]["managedRuleGroupStatement"] == {"vendorName": "AWS", "name": group}
        assert by_name[group]["overrideAction"] == {"none": {}}  # the group's own actions: block
    rate = by_name["rate-limit-per-address"]
    assert rate["statement"]["rateBasedStatement"] == {"limit": 2000, "aggregateKeyType": "IP",
                                                       "evaluationWindowSec": 300}
    assert rate["action"]["block"]["customResponse"] == {
        "responseCode": 429, "customResponseBodyKey": "rate-limited",
        "responseHeaders": [{"name": "Retry-After", "value": "300"}]}
    size = by_name["body-limit"]["statement"]["sizeConstraintStatement"]
    # The application's own limit (MAX_CONTENT_LENGTH); a body the load balancer does not hand over whole matches.
    assert (size["comparisonOperator"], size["size"], size["fieldToMatch"]) == (
        "GT", 8192, {"body": {"oversizeHandling": "MATCH"}})
    assert by_name["body-limit"]["action"]["block"]["customResponse"]["responseCode"] == 413
    association = run.one("aws:wafv2/webAclAssociation:WebAclAssociation").inputs
    assert association["resourceArn"] == ALB_ARN
    assert association["webAclArn"] == run.one("aws:wafv2/webAcl:WebAcl").outputs["arn"]
    assert acl(run)["name"] == web_acl_name("flask-aws-prod") and acl(run)["scope"] == "REGIONAL"


def test_blocked_clients_get_the_applications_json_errors():
    bodies = {body["key"]: body for body in acl(build())["customResponseBodies"]}
    assert {body["contentType"] for body in bodies.values()} == {"APPLICATION_JSON"}
    assert json.loads(bodies["rate-limited"]["content"])["error"] == "too_many_requests"
    too_large = json.loads(bodies["too-large"]["content"])
    assert too_large == {"error": "request_entity_too_large", "message": "The request body is larger than 8192 bytes."}


def test_dev_counts_everything_and_a_rule_can_count_alone_while_its_group_blocks():
    dev = rules(build("dev"))
    assert all(rule.get("action") == {"count": {}} or rule.get("overrideAction") == {"count": {}}
               for rule in dev.values())
    run = build("prod", countRules=["AWSManagedRulesCommonRuleSet/SizeRestrictions_BODY",
                                    "AWSManagedRulesCommonRuleSet/CrossSiteScripting_BODY"])
    assert web_acl_problems(acl(run)) == ""
    tuned = rules(run)
    common = tuned["AWSManagedRulesCommonRuleSet"]
    assert common["overrideAction"] == {"none": {}}
    assert common["statement"]["managedRuleGroupStatement"]["ruleActionOverrides"] == [
        {"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}},
        {"name": "CrossSiteScripting_BODY", "actionToUse": {"count": {}}}]
    assert "ruleActionOverrides" not in tuned["AWSManagedRulesSQLiRuleSet"]["statement"]["managedRuleGroupStatement"]
    assert "block" in tuned["rate-limit-per-address"]["action"]


def test_every_request_is_logged_with_credentials_redacted_by_this_accounts_delivery():
    run = build()
    group = run.one("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"] == log_group_name("flask-aws-prod") == "aws-waf-logs-flask-aws-prod"
    assert (group.inputs["retentionInDays"], group.inputs["kmsKeyId"]) == (90, LOGS_KEY_ARN)
    logging = run.one("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert logging.inputs["logDestinationConfigs"] == [group.outputs["arn"]]
    assert logging.inputs["redactedFields"] == [{"singleHeader": {"name": "authorization"}},
                                                {"singleHeader": {"name": "cookie"}}]
    delivery = run.one("aws:cloudwatch/logResourcePolicy:LogResourcePolicy")
    assert delivery.urn in logging.depends_on
    (statement,) = json.loads(delivery.inputs["policyDocument"])["Statement"]
    assert statement["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert statement["Resource"] == group.outputs["arn"] + ":*"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": harness.ACCOUNT},
                                      "ArnLike": {"aws:SourceArn": f"arn:aws:logs:eu-west-1:{harness.ACCOUNT}:*"}}


def test_a_stack_without_the_firewall_has_neither_it_nor_its_alarm():
    run = harness.run_stack("dev", overrides={"firewall": {"mode": "off"}})
    assert run.of_type("aws:wafv2/webAcl:WebAcl") == []
    assert not [a for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "firewall" in a.name]
