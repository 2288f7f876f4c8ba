"""What each tier insists on, as data: how strictly it holds each policy-pack rule, and the settings values it
requires.

A requirement is read twice, from here: settings validation refuses a stack that breaks it before any resource is
declared (infra/settings/checks.py), and the policy pack checks what was actually declared, with the requirement's
value in its per-stack configuration (infra/policy). Parity counts a requirement that one tier has and another
lacks as a deliberate difference between them (infra/offline/parity.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MANDATORY, ADVISORY, DISABLED = "mandatory", "advisory", "disabled"

# The rules no stack may break, whatever its tier.
ALWAYS_MANDATORY = ("debug-off-secret-key-from-a-secret", "no-wildcard-iam", "nothing-public-in-the-data-tier",
                    "encryption-at-rest", "logs-with-retention", "database-credentials-least-privilege",
                    "narrow-egress", "endpoint-policies", "scoped-trust-policies", "explicit-key-policies")

# Enforcement of the policy pack's rules per tier: (level of every rule not named, the named exceptions).
# Everything is mandatory in staging and prod except what the tier deliberately lacks; dev is told (advisory), never
# blocked, except for the rules no stack may break.
ENFORCEMENT: dict[str, tuple[str, dict[str, str]]] = {
    "dev": (ADVISORY, {**dict.fromkeys(ALWAYS_MANDATORY, MANDATORY), "deletion-protection-and-multi-az": DISABLED}),
    "staging": (MANDATORY, {"deletion-protection-and-multi-az": ADVISORY, "error-tracking": ADVISORY}),
    "prod": (MANDATORY, {"error-tracking": ADVISORY}),
}

AT_LEAST, EXACTLY, SET = "at least", "exactly", "set"


@dataclass(frozen=True)
class Requirement:
    """A settings value some tiers insist on. `tiers` maps each such tier to the value: the least allowed
    (AT_LEAST), the only one (EXACTLY), or True for "not empty" (SET). `why` and `allowed` may name {tier} and
    {value}. `also` lists the other keys a stack sets to meet it (parity counts their differences as its own)."""

    key: str
    policy: str  # the policy-pack rule that checks the declared resources for it (mandatory wherever it applies)
    kind: str
    tiers: dict[str, object]
    why: str
    allowed: str
    also: tuple[str, ...] = field(default=())

    def applies(self, tier: str) -> bool:
        return tier in self.tiers

    def json_type(self) -> str:
        """The JSON type of its values in the policy configuration."""
        value = next(iter(self.tiers.values()))
        return {bool: "boolean", int: "integer", str: "string"}[type(value)]

    def met(self, tier: str, value) -> bool:
        wanted = self.tiers[tier]
        if self.kind == AT_LEAST:
            return value >= wanted
        if self.kind == SET:
            return bool(value)
        return value == wanted

    def explain(self, tier: str) -> tuple[str, str]:
        """(why, allowed) for a stack of `tier` that does not meet it."""
        text = {"tier": tier, "value": self.tiers[tier]}
        return self.why.format(**text), self.allowed.format(**text)


REQUIREMENTS = (
    Requirement("database.backupRetentionDays", "backups-and-restore-drill", AT_LEAST, {"prod": 7},
                "{tier} keeps at least {value} days of backups", "{value}..35"),
    Requirement("database.deletionProtection", "deletion-protection-and-multi-az", EXACTLY, {"prod": True},
                "{tier} databases are deletion-protected", "true"),
    Requirement("snapshots.enabled", "backups-and-restore-drill", EXACTLY, {"prod": True},
                "{tier} takes AWS Backup snapshots of its database", "true"),
    Requirement("snapshots.copyRegion", "backups-and-restore-drill", SET, {"prod": True},
                "{tier} keeps a copy of its snapshots in a second region", "a region other than aws:region"),
    Requirement("backups.objectLock", "immutable-backups", EXACTLY, {"staging": True, "prod": True},
                "{tier} keeps its backup dumps under S3 Object Lock", "true"),
    Requirement("monitoring.alarmEmails", "alarms-present", SET, {"staging": True, "prod": True},
                "{tier} alarms must reach someone", "one or more addresses"),
    Requirement("database.sslMode", "tls-verified", EXACTLY, {"staging": "verify-full", "prod": "verify-full"},
                "{tier} verifies the database server's certificate and host name", "{value}"),
    Requirement("firewall.mode", "waf-on-public-load-balancer", EXACTLY, {"staging": "block", "prod": "block"},
                "{tier} blocks what AWS WAF's rules match in front of its public load balancer", "{value}"),
    Requirement("loadBalancer.allowHttp", "https-only", EXACTLY, {"staging": False, "prod": False},
                "{tier} serves HTTPS only", "false",
                also=("loadBalancer.domain", "loadBalancer.hostedZoneId", "loadBalancer.certificateArn")),
)


def level(tier: str, policy: str) -> str:
    """How strictly `tier` holds the policy-pack rule `policy`."""
    default, named = ENFORCEMENT[tier]
    return named.get(policy, default)


def policy_config(tier: str, policy: str) -> dict[str, object]:
    """The configuration of the policy-pack rule `policy` in `tier`: the value of each requirement it checks,
    keyed by settings key, None where the tier does not require it."""
    return {r.key: r.tiers.get(tier) for r in REQUIREMENTS if r.policy == policy}


def strictest(key: str):
    """The strictest value any tier requires of `key`: what a rule checks when no configuration says otherwise
    (secure by default, e.g. the pack run without --policy-pack-config)."""
    requirement = next(r for r in REQUIREMENTS if r.key == key)
    values = list(requirement.tiers.values())
    return max(values) if requirement.kind == AT_LEAST else values[0]
