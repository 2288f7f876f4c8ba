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

# Staging's deliberate topology differences from prod: resource type -> (count in staging, count in prod, why);
# why is None for a row that follows from another. The counts are exact: a staging that lost more than these
# (every replica, say) is a difference nobody chose.
STAGING_EXCEPTIONS: dict[str, tuple[int, int, str | None]] = {
    "aws:ec2/natGateway:NatGateway": (1, 3, "one NAT gateway, not one per AZ: an AZ outage only costs staging its "
                                            "egress"),
    "aws:ec2/eip:Eip": (1, 3, None),  # the NAT gateways' addresses
    "aws:ec2/routeTable:RouteTable": (3, 5, None),  # one private route table per NAT gateway
    "aws:ec2/route:Route": (3, 5, None),  # their default routes
    "aws:rds/instance:Instance": (2, 3, "one read replica, not two: one exercises the same read path"),
    "aws:cloudwatch/logGroup:LogGroup": (7, 9, None),  # the second replica's log groups
    "aws:backup/vault:Vault": (1, 2, "no cross-region snapshot copy: disaster recovery is a prod concern"),
    "aws:kms/key:Key": (2, 3, None),  # the copy region's key
    "aws:kms/alias:Alias": (2, 3, None),
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
        listed = STAGING_EXCEPTIONS.get(resource_type)
        if listed is None or listed[:2] != (count_a, count_b):
            why = "NOT A LISTED EXCEPTION" + (f": listed as {listed[0]} vs {listed[1]}" if listed else "")
        else:
            why = listed[2]
        lines.append(f"  {resource_type}: {count_a} vs {count_b}" + (f"  ({why})" if why else ""))
    if not differences:
        lines.append("  none")
    lines += ["", "Sizing (same resource, other size):"]
    lines += [f"  {name}.{prop}: {_short(va)} vs {_short(vb)}" for name, prop, va, vb in sizing(a, b)] or ["  none"]
    return "\n".join(lines)


def unlisted(a: harness.Run, b: harness.Run) -> list[str]:
    """Topology differences that are not deliberate exceptions, count for count."""
    return [t for t, found in topology(a, b).items() if STAGING_EXCEPTIONS.get(t, (None, None))[:2] != found]


def _short(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
