"""Lists AWS publishes, as data: what settings check names against, and what the components and the policy pack
build from. Each says where it comes from and when it was read; update it from there.
"""

from __future__ import annotations

# AWS WAF's managed rule groups the firewall runs (vendor AWS), in the order it evaluates them, with what each stops.
# Source: https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-list.html (read 2026-12).
WAF_RULE_GROUPS = {
    "AWSManagedRulesAmazonIpReputationList": "addresses Amazon threat intelligence knows for bots and attacks",
    "AWSManagedRulesCommonRuleSet": "the OWASP Top 10 kinds: cross-site scripting, local and remote file "
                                    "inclusion, oversized or missing parts of a request",
    "AWSManagedRulesKnownBadInputsRuleSet": "request patterns known to exploit vulnerabilities (Log4j, Java "
                                            "deserialization, host header tricks)",
    "AWSManagedRulesSQLiRuleSet": "SQL injection in the query string, body, cookies and URI",
}
# An Application Load Balancer hands AWS WAF only this much of a request body; the rest is not inspected.
# Source: https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-setting-body-inspection-limit.html
WAF_ALB_BODY_LIMIT_BYTES = 8192
# The evaluation windows a rate-based rule takes (EvaluationWindowSec).
WAF_RATE_WINDOWS = (60, 120, 300, 600)

# The security policies an Application Load Balancer's HTTPS listener takes that allow TLS 1.3, and whether any
# suite they offer over TLS 1.2 or lower is CBC (not AEAD). Source: "Security policies for your Application Load
# Balancer", https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html (read
# 2026-12; cipher tables of the 2021-06 and FIPS 2023-04 policies). The post-quantum (2025-09) and RFC 9151 (2023-07)
# names are from the same page and AWS's CDK; their cipher lists were not confirmed here, so they count as offering
# CBC until `aws elbv2 describe-ssl-policies --names <name>` shows otherwise (then move them to the CBC-free set),
# except the TLS 1.3-only ones, which have no TLS 1.2 suites at all.
ELB_TLS13_POLICIES_WITHOUT_CBC = frozenset({
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-RFC9151-FIPS-2023-07",
})
ELB_TLS13_POLICIES = ELB_TLS13_POLICIES_WITHOUT_CBC | frozenset({
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-RFC9151-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP1-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP2-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP3-FIPS-2023-07",
    "ELBSecurityPolicy-TLS13-1-2-RFC9151-INTEROP4-FIPS-2023-07",
})

# Where ECR keeps image layers: a task pulling an image downloads them from this AWS-owned bucket of the region,
# through a URL ECR's own account presigned (so no condition on the caller's account can hold for it). Source:
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html ("Create the Amazon S3 gateway endpoint").
ECR_LAYER_BUCKET_PATTERN = "arn:*:s3:::prod-*-starport-layer-bucket/*"


def ecr_layer_objects(partition: str, region: str) -> str:
    return f"arn:{partition}:s3:::prod-{region}-starport-layer-bucket/*"
