"""Environment parity: how two stacks' plans differ, in topology (resource types and counts) and in sizing, and why.

The reasons are derived, not listed: the program runs again with the settings that decide which resources exist
(`shape` in infra/settings/schema.py) moved one at a time from the first stack's value to the second's, and what
changes with a setting is its doing. A difference is deliberate when the tiers' defaults differ there and each
stack keeps its tier's value (infra/tiers/defaults.py says why), or when a requirement holds in one tier and not
in the other (infra/tiers/requirements.py). A value a stack file chose, or a difference no setting explains, is not.
"""

from __future__ import annotations

import copy
import json
import typing
from collections import Counter
from dataclasses import dataclass, fields, is_dataclass

import pulumi

from infra import settings as settings_package
from infra import tiers
from infra.offline import harness
from infra.settings.fields import camel, value_at

# Properties that size a resource rather than shape the topology, per type.
SIZING = {
    "aws:rds/instance:Instance": ["instanceClass", "allocatedStorage", "maxAllocatedStorage", "multiAz",
                                  "backupRetentionPeriod", "deletionProtection"],
    "aws:elasticache/replicationGroup:ReplicationGroup": ["nodeType", "numCacheClusters", "multiAzEnabled",
                                                          "snapshotRetentionLimit"],
    "aws:ecs/taskDefinition:TaskDefinition": ["cpu", "memory"],
    "aws:appautoscaling/target:Target": ["minCapacity", "maxCapacity"],
    "aws:cloudwatch/logGroup:LogGroup": ["retentionInDays"],
    "aws:lb/loadBalancer:LoadBalancer": ["enableDeletionProtection"],
    "aws:secretsmanager/secret:Secret": ["recoveryWindowInDays"],
}
UNLISTED = "NOT A LISTED EXCEPTION"


@dataclass(frozen=True)
class Cause:
    """Settings moved together from one stack's values to the other's, and why the two differ there."""

    keys: tuple[str, ...]
    values: tuple[tuple[object, object], ...]
    why: str | None  # None: not a deliberate difference

    def turned(self) -> Cause:
        return Cause(self.keys, tuple((b, a) for a, b in self.values), self.why)

    def __str__(self) -> str:
        moved = ", ".join(f"{k} {_short(a)} vs {_short(b)}" for k, (a, b) in zip(self.keys, self.values, strict=True))
        return f"{moved}: {self.why}" if self.why else f"{moved}: {UNLISTED} (a stack file's choice, not a tier's)"


@dataclass(frozen=True)
class Row:
    """A resource type whose count differs, and the causes that change it."""

    type: str
    counts: tuple[int, int]
    causes: tuple[Cause, ...]
    unexplained: bool  # part of the difference follows from no shaping setting that moved
    stuck: tuple[str, ...] = ()  # shaping settings that could not move (never valid on the first stack)

    @property
    def deliberate(self) -> bool:
        return not self.unexplained and all(c.why for c in self.causes)

    def turned(self) -> Row:
        return Row(self.type, self.counts[::-1], tuple(c.turned() for c in self.causes), self.unexplained,
                   self.stuck)

    def __str__(self) -> str:
        unexplained = f"{UNLISTED}: no setting explains it" + (
            f" ({', '.join(self.stuck)} could not be moved)" if self.stuck else "")
        reasons = [str(c) for c in self.causes] + ([unexplained] if self.unexplained else [])
        return f"  {self.type}: {self.counts[0]} vs {self.counts[1]}  ({'; '.join(reasons)})"


def counts(run: harness.Run) -> Counter:
    return Counter(r.type for r in run.resources)


def topology(a: harness.Run, b: harness.Run) -> dict[str, tuple[int, int]]:
    """Resource types whose counts differ: type -> (count in a, count in b)."""
    ca, cb = counts(a), counts(b)
    return {t: (ca[t], cb[t]) for t in sorted(ca.keys() | cb.keys()) if ca[t] != cb[t]}


def sizing(a: harness.Run, b: harness.Run) -> list[tuple[str, str, object, object]]:
    """(resource, property, value in a, value in b) for same-named resources sized differently."""
    found = []
    by_key = {(r.type, r.name): r for r in b.resources}
    for r in a.resources:
        other = by_key.get((r.type, r.name))
        if other is None:
            continue
        for prop in SIZING.get(r.type, []):
            if r.inputs.get(prop) != other.inputs.get(prop):
                found.append((r.name, prop, r.inputs.get(prop), other.inputs.get(prop)))
    return found


def explain(a: harness.Run, b: harness.Run) -> list[Row]:
    """Every topology difference between two stack runs, with its causes. The settings move onto the stack whose
    tier requires less (a value a stricter tier requires is valid on a laxer one, not the other way round); when
    that is `b`, the answer is turned round."""
    sa, sb = harness.settings_of(a), harness.settings_of(b)
    if _strictness(sb) < _strictness(sa):
        return [row.turned() for row in _explain(b, a, sb, sa)]
    return _explain(a, b, sa, sb)


def _explain(a: harness.Run, b: harness.Run, sa, sb) -> list[Row]:
    moved = [key for key, shape in shaping_keys() if shape(value_at(sa, key)) != shape(value_at(sb, key))]
    steps: list[tuple[Cause, Counter]] = []
    current, before, pending = {}, counts(a), []
    for key in moved:
        # Alone, else together with the keys that could not move alone (a domain without its zone, say).
        for keys in [[key]] + ([pending + [key]] if pending else []):
            trial = _with(current, sb, keys)
            try:
                after = counts(harness.rerun(a, trial))
            except pulumi.RunError:
                continue
            steps.append((_cause(sa, sb, tuple(keys)), _delta(before, after)))
            current, before = trial, after
            pending = [] if len(keys) > 1 else pending
            break
        else:
            pending.append(key)
    # What the moved settings did not account for: a setting the schema does not mark, or one that never moved.
    residual = _delta(before, counts(b))
    return [Row(t, found, tuple(cause for cause, delta in steps if delta[t]), bool(residual[t]), tuple(pending))
            for t, found in topology(a, b).items()]


def unlisted(a: harness.Run, b: harness.Run) -> list[str]:
    """Topology differences that are not deliberate."""
    return [row.type for row in explain(a, b) if not row.deliberate]


def report(a: harness.Run, b: harness.Run, rows: list[Row] | None = None) -> str:
    """The parity report; `rows` when explain() already ran."""
    rows = explain(a, b) if rows is None else rows
    lines = [f"Parity of '{a.stack}' against '{b.stack}'", "", "Topology (resource types whose counts differ):"]
    lines += [str(row) for row in rows] or ["  none"]
    lines += ["", "Sizing (same resource, other size):"]
    lines += [f"  {name}.{prop}: {_short(va)} vs {_short(vb)}" for name, prop, va, vb in sizing(a, b)] or ["  none"]
    return "\n".join(lines)


def shaping_keys(cls=settings_package.Settings, path: str = "") -> list[tuple[str, object]]:
    """(dotted key, shape) of every setting that decides which resources exist, in schema order."""
    found = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            found += shaping_keys(hints[f.name], f"{path}{camel(f.name)}.")
        elif f.metadata.get("shape"):
            found.append((path + camel(f.name), f.metadata["shape"]))
    return found


def _cause(sa, sb, keys: tuple[str, ...]) -> Cause:
    values = tuple((value_at(sa, k), value_at(sb, k)) for k in keys)
    reasons = [_why(sa, sb, k) for k in keys]
    return Cause(keys, values, "; ".join(dict.fromkeys(reasons)) if all(reasons) else None)


def _why(sa, sb, key: str) -> str | None:
    """Why two stacks differ in `key` when the tiers make them, else None. A requirement one tier has is the
    reason only when the other stack would not meet it."""
    for r in tiers.REQUIREMENTS:
        if key in (r.key, *r.also) and r.applies(sa.tier) != r.applies(sb.tier):
            tier, other = (sa.tier, sb) if r.applies(sa.tier) else (sb.tier, sa)
            if not r.met(tier, value_at(other, r.key)):
                return f"{r.explain(tier)[0]} ({tier}'s requirement)"
    da, db = (_tier_default(s.tier, key) for s in (sa, sb))
    if da != db and value_at(sa, key) == da and value_at(sb, key) == db:
        return tiers.WHY_TIERS_DIFFER.get(key, f"the tiers' defaults differ ({sa.tier}, {sb.tier})")
    return None


def _tier_default(tier: str, key: str):
    value = tiers.defaults(tier)
    for part in key.split("."):
        value = value[part]
    return value


def _strictness(settings) -> int:
    return sum(r.applies(settings.tier) for r in tiers.REQUIREMENTS)


def _with(overrides: dict, settings, keys: list[str]) -> dict:
    """A copy of `overrides` with these keys set to their values in `settings`."""
    changed = copy.deepcopy(overrides)
    for key in keys:
        *groups, last = key.split(".")
        group = changed
        for name in groups:
            group = group.setdefault(name, {})
        group[last] = value_at(settings, key)
    return changed


def _delta(before: Counter, after: Counter) -> Counter:
    return Counter({t: after[t] - before[t] for t in before.keys() | after.keys() if after[t] != before[t]})


def _short(value) -> str:
    if value in ("", [], {}):
        return "(empty)"
    return value if isinstance(value, str) else json.dumps(value)
