"""Environment parity: how two stacks' plans differ, in topology (resource types and counts) and in sizing.

Staging must have prod's topology; every topology difference is a deliberate exception listed here (and in
docs/ARCHITECTURE.md), and a test fails on any other.
"""

from __future__ import annotations

import json
from collections import Counter

from infra import harness

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

# Staging's deliberate topology differences from prod, by resource type: why (None: follows from another row).
STAGING_EXCEPTIONS: dict[str, str | None] = {
    "aws:ec2/natGateway:NatGateway": "one NAT gateway, not one per AZ: an AZ outage only costs staging its egress",
    "aws:ec2/eip:Eip": None,  # the NAT gateways' addresses
    "aws:ec2/routeTable:RouteTable": None,  # one private route table per NAT gateway
    "aws:ec2/route:Route": None,  # their default routes
    "aws:rds/instance:Instance": "one read replica, not two: one exercises the same read path",
    "aws:cloudwatch/logGroup:LogGroup": None,  # the second replica's log groups
    "aws:backup/vault:Vault": "no cross-region snapshot copy: disaster recovery is a prod concern",
    "aws:kms/key:Key": None,  # the copy region's key
    "aws:kms/alias:Alias": None,
}


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


def report(a: harness.Run, b: harness.Run) -> str:
    lines = [f"Parity of '{a.stack}' against '{b.stack}'", "", "Topology (resource types whose counts differ):"]
    differences = topology(a, b)
    for resource_type, (count_a, count_b) in differences.items():
        why = STAGING_EXCEPTIONS.get(resource_type, "NOT A LISTED EXCEPTION")
        lines.append(f"  {resource_type}: {count_a} vs {count_b}" + (f"  ({why})" if why else ""))
    if not differences:
        lines.append("  none")
    lines += ["", "Sizing (same resource, other size):"]
    lines += [f"  {name}.{prop}: {_short(va)} vs {_short(vb)}" for name, prop, va, vb in sizing(a, b)] or ["  none"]
    return "\n".join(lines)


def unlisted(a: harness.Run, b: harness.Run) -> list[str]:
    """Topology differences that are not deliberate exceptions."""
    return [t for t in topology(a, b) if t not in STAGING_EXCEPTIONS]


def _short(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
