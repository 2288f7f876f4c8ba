"""The deployment checklist, and AWS hardening, as pulumi_policy rules.

The same Policy objects run in `pulumi preview --policy-pack infra/policy` (the pack's __main__.py) and offline
(`infra/offline/checklist.py`, used by `python -m infra.plan` and the tests). Props are what the engine passes: the
resource's inputs (camelCase), plus known outputs on a stack validation. Checklist items the infrastructure cannot
see (CSRF, static caching, the app's own headers) are tested in the application and nginx suites instead.

How strictly each tier holds each rule, and the values a tier requires (a rule's configuration, e.g. the least
days of automated backups), are data in infra/tiers/requirements.py, shared with settings validation.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy, StackValidationPolicy

from infra import sizing, tiers
from infra.policy.perimeter_rules import (
    endpoint_policies,
    explicit_key_policies,
    immutable_backups,
    narrow_egress,
    scoped_trust_policies,
    waf_on_public_load_balancer,
)
from infra.policy.resource_rules import (
    api_rate_limits,
    debug_off_secret_key_from_a_secret,
    deletion_protection_and_multi_az,
    encryption_at_rest,
    encryption_in_transit,
    error_tracking,
    health_checks,
    https_only,
    logs_with_retention,
    no_wildcard_iam,
    security_headers,
    tls_verified,
    wsgi_server_behind_a_proxy,
)
from infra.policy.stack_rules import (
    alarms_present,
    backups_and_restore_drill,
    connection_pooling_within_budget,
    database_credentials_least_privilege,
    nothing_public_in_the_data_tier,
    secrets_rotated,
)


def requirement_schema(policy: str) -> PolicyConfigSchema | None:
    """The configuration a rule takes: the value each tier requires of the settings it checks, or null where the
    tier does not require it (written per stack by `python -m infra.policy.levels`)."""
    properties = {r.key: {"type": [r.json_type(), "null"],
                          "description": f"what the tier requires of {r.key} ({r.kind}); null: nothing"}
                  for r in tiers.REQUIREMENTS if r.policy == policy}
    return PolicyConfigSchema(properties) if properties else None


POLICIES = [
    ResourceValidationPolicy("https-only", "HTTP redirects to HTTPS where the tier serves HTTPS only; HTTPS uses a "
                             "TLS 1.3 policy without CBC suites", https_only,
                             config_schema=requirement_schema("https-only")),
    ResourceValidationPolicy("security-headers", "HSTS, nosniff and X-Frame-Options on every response",
                             security_headers),
    ResourceValidationPolicy("debug-off-secret-key-from-a-secret", "no debug, a staging/production config class, "
                             "SECRET_KEY and every credential injected from Secrets Manager",
                             debug_off_secret_key_from_a_secret),
    ResourceValidationPolicy("wsgi-server-behind-a-proxy", "Gunicorn (the image's entrypoint) behind the load "
                             "balancer, ProxyFix told about it, no public task IPs", wsgi_server_behind_a_proxy),
    StackValidationPolicy("connection-pooling-within-budget", "tasks x workers x (pool + overflow) within "
                          f"{sizing.BUDGET_PERCENT} % of every database instance's max_connections",
                          connection_pooling_within_budget),
    ResourceValidationPolicy("api-rate-limits", "the API's own rate limits on, per client address and per token, "
                             "shared by every task through Redis", api_rate_limits),
    ResourceValidationPolicy("logs-with-retention", "every log group expires and is encrypted",
                             logs_with_retention),
    ResourceValidationPolicy("health-checks", "load balancer, container and service health checks",
                             health_checks),
    StackValidationPolicy("alarms-present", "alarms on errors, latency, health, saturation and storage, notifying "
                          "someone where the tier requires it; deployments roll back on alarms", alarms_present,
                          config_schema=requirement_schema("alarms-present")),
    StackValidationPolicy("backups-and-restore-drill", "automated database backups, a scheduled logical backup "
                          "and a scheduled restore drill; snapshots and their copy where the tier requires them",
                          backups_and_restore_drill, config_schema=requirement_schema("backups-and-restore-drill")),
    ResourceValidationPolicy("encryption-at-rest", "databases, cache, topics, secrets, vaults and images "
                             "encrypted", encryption_at_rest),
    ResourceValidationPolicy("encryption-in-transit", "TLS to Redis and PostgreSQL, TLS-only buckets",
                             encryption_in_transit),
    StackValidationPolicy("nothing-public-in-the-data-tier", "no public database or data subnet; the internet "
                          "reaches only the load balancer, on 80/443", nothing_public_in_the_data_tier),
    ResourceValidationPolicy("deletion-protection-and-multi-az", "prod survives an AZ and a mistaken delete",
                             deletion_protection_and_multi_az,
                             config_schema=requirement_schema("deletion-protection-and-multi-az")),
    ResourceValidationPolicy("no-wildcard-iam", "no wildcard actions; '*' resources only for actions that take "
                             "nothing else", no_wildcard_iam),
    ResourceValidationPolicy("error-tracking", "errors reported to an error tracker (Sentry)", error_tracking),
    StackValidationPolicy("database-credentials-least-privilege", "no serving container gets, or may read, the "
                          "master or the owner login", database_credentials_least_privilege),
    StackValidationPolicy("secrets-rotated", "every database login rotates on a schedule; every other secret says "
                          "how it rotates", secrets_rotated),
    StackValidationPolicy("waf-on-public-load-balancer", "AWS WAF on every internet-facing load balancer: AWS's "
                          "managed rule groups, a rate limit per address, a body limit, logs without credentials; "
                          "blocking where the tier blocks", waf_on_public_load_balancer,
                          config_schema=requirement_schema("waf-on-public-load-balancer")),
    ResourceValidationPolicy("narrow-egress", "egress to address ranges on 443 only, every other port to a "
                             "security group", narrow_egress),
    StackValidationPolicy("endpoint-policies", "every VPC endpoint has a policy admitting only this account's "
                          "principals", endpoint_policies),
    ResourceValidationPolicy("scoped-trust-policies", "service roles are assumed for this account only, and for "
                             "the named resources where the service names them", scoped_trust_policies),
    ResourceValidationPolicy("explicit-key-policies", "every KMS key has its own policy: administration apart from "
                             "use, use through AWS services, log encryption for the stack's log groups only",
                             explicit_key_policies),
    StackValidationPolicy("immutable-backups", "vaults under Vault Lock; the dumps under S3 Object Lock where the "
                          "tier requires it, and their access logged", immutable_backups,
                          config_schema=requirement_schema("immutable-backups")),
    ResourceValidationPolicy("tls-verified", "PostgreSQL's certificate and host name verified against the RDS "
                             "bundle (the tier's sslmode), TLS to Redis", tls_verified,
                             config_schema=requirement_schema("tls-verified")),
]

LEVELS = {tier: {p.name: EnforcementLevel(tiers.level(tier, p.name)) for p in POLICIES} for tier in tiers.TIERS}
