"""The policy pack's rules run on a plan recorded by the mock harness: what `pulumi preview --policy-pack` would
say, without the CLI. The rules are the same objects; only the arguments are built here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from infra import tiers
from infra.offline import harness
from infra.policy.rules import LEVELS, POLICIES


@dataclass
class Verdict:
    policy: str
    description: str
    level: EnforcementLevel
    violations: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return bool(self.violations) and self.level == EnforcementLevel.MANDATORY

    def __str__(self) -> str:
        if self.level == EnforcementLevel.DISABLED:
            state = "off "
        elif not self.violations:
            state = "PASS"
        else:
            state = "FAIL" if self.blocking else "warn"
        lines = [f"{state}  {self.policy} ({self.level.value}): {self.description}"]
        lines += [f"        - {v}" for v in self.violations]
        return "\n".join(lines)


def policy_resources(run: harness.Run) -> list[PolicyResource]:
    """The recorded custom resources as the engine hands them to a policy pack (props: inputs and known outputs;
    property dependencies: which resources each input was computed from)."""
    resources = {}
    for r in run.resources:
        if not r.custom:
            continue
        timeouts = PolicyCustomTimeouts(0, 0, 0)
        opts = PolicyResourceOptions(protect=r.protect, ignore_changes=list(r.ignore_changes or []),
                                     delete_before_replace=r.delete_before_replace, aliases=[],
                                     custom_timeouts=timeouts, additional_secret_outputs=[], parent=r.parent)
        resources[r.urn] = PolicyResource(r.type, {**r.inputs, **r.outputs}, r.urn, r.name, opts, None, None, [], {})
    for r in run.resources:
        if r.urn in resources:
            resources[r.urn].property_dependencies.update(
                {key: [resources[u] for u in urns if u in resources] for key, urns in r.dependencies.items()})
    return list(resources.values())


def tier_of(run: harness.Run) -> str:
    """The stack's tier, as its provider tags every resource (Environment)."""
    provider = run.one("pulumi:providers:aws")
    tags = provider.inputs.get("defaultTags") or "{}"
    return (json.loads(tags) if isinstance(tags, str) else tags).get("tags", {}).get("Environment", run.stack)


def evaluate(run: harness.Run, tier: str | None = None) -> list[Verdict]:
    """Every rule on the plan, with the tier's enforcement levels (default: the stack's own tier)."""
    tier = tier or tier_of(run)
    resources = policy_resources(run)
    verdicts = []
    for policy in POLICIES:
        verdict = Verdict(policy.name, policy.description, LEVELS[tier][policy.name])
        verdicts.append(verdict)
        if verdict.level != EnforcementLevel.DISABLED:
            verdict.violations = violations(policy, resources, tiers.policy_config(tier, policy.name))
    return verdicts


def violations(policy, resources: list[PolicyResource], config: dict | None = None) -> list[str]:
    """One rule on these resources, as the engine calls it (each resource in turn, or the stack at once), with
    the rule's configuration from the stack's policy config file."""
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)
    if isinstance(policy, ResourceValidationPolicy):
        for r in resources:
            policy.validate(ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, None, config),
                            report)
    else:
        policy.validate(StackValidationArgs(resources, config), report)
    return found


def checklist(verdicts: list[Verdict]) -> str:
    blocking = sum(v.blocking for v in verdicts)
    warned = sum(bool(v.violations) and not v.blocking for v in verdicts)
    head = (f"Deployment checklist (policy pack infra/policy): {len(verdicts)} rules, {blocking} mandatory "
            f"violated, {warned} advisory")
    return "\n".join([head, *map(str, verdicts)])
