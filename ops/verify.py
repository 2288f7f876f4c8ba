"""Post-deploy verification of a stack from its outputs: is what was deployed actually serving?

    pulumi stack output --json --show-secrets=false | python -m ops.verify -
    python -m ops.verify outputs.json [--max-replica-lag 30] [--timeout 10]

Checks: the ECS service is steady (running = desired, one deployment, COMPLETED, on the deployed task definition:
not rolled back), every load balancer target healthy, the RDS primary and replicas available with replica lag under
the threshold, Redis available, and GET <url>/health/detailed answering 200 (it needs an API token: VERIFY_API_TOKEN,
from `flask tokens create`, sent over HTTPS only or to this machine; without one, GET <url>/health, which says only
that the service answers). Prints one
line per check and exits 1 if any failed, for CI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ops import OpsError
from ops.aws import client, main, reported

RETRY_SECONDS = 15
REQUIRED = ("region", "clusterName", "serviceName", "taskDefinitionArn", "targetGroupArn", "databaseIdentifier",
            "databaseReplicaIdentifiers", "redisReplicationGroupId", "url")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def load_outputs(source: str) -> dict:
    try:
        text = sys.stdin.read() if source == "-" else open(source).read()
        outputs = json.loads(text)
    except OSError as error:
        raise OpsError(f"cannot read {source}: {error.strerror}") from None
    except ValueError:
        raise OpsError(f"{source} is not JSON: pass `pulumi stack output --json`") from None
    if not isinstance(outputs, dict):
        raise OpsError(f"{source} is not `pulumi stack output --json`: expected an object of outputs")
    missing = [key for key in REQUIRED if key not in outputs]
    if missing:
        raise OpsError(f"{source} lacks the stack outputs {', '.join(missing)}: pass `pulumi stack output --json` "
                       "of a stack of this project")
    return outputs


def service(ecs, outputs: dict) -> Check:
    name = f"ECS service {outputs['clusterName']}/{outputs['serviceName']}"
    with reported(f"describing {name}"):
        found = ecs.describe_services(cluster=outputs["clusterName"], services=[outputs["serviceName"]])["services"]
    if not found or found[0].get("status") != "ACTIVE":
        return Check(name, False, "not found or not active")
    svc = found[0]
    running, desired = svc["runningCount"], svc["desiredCount"]
    deployments = svc.get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    problems = []
    if running != desired:
        problems.append(f"{running}/{desired} tasks running")
    if len(deployments) != 1:
        problems.append(f"{len(deployments)} deployments (one still rolling)")
    if primary.get("rolloutState") != "COMPLETED":
        problems.append(f"rollout {primary.get('rolloutState', 'unknown')}: {primary.get('rolloutStateReason', '')}"
                        .rstrip(": "))
    if primary.get("failedTasks"):
        problems.append(f"{primary['failedTasks']} tasks failed to start")
    if primary.get("taskDefinition") and primary["taskDefinition"] != outputs["taskDefinitionArn"]:
        problems.append(f"runs {primary['taskDefinition'].rsplit('/', 1)[-1]}, not the deployed "
                        f"{outputs['taskDefinitionArn'].rsplit('/', 1)[-1]} (rolled back?)")
    return Check(name, not problems, "; ".join(problems) or f"{running}/{desired} running, rollout COMPLETED")


def targets(elbv2, outputs: dict) -> Check:
    name = "load balancer targets"
    with reported("describing target health"):
        health = elbv2.describe_target_health(TargetGroupArn=outputs["targetGroupArn"])["TargetHealthDescriptions"]
    states = [t["TargetHealth"]["State"] for t in health]
    bad = [f"{t['Target']['Id']} {t['TargetHealth']['State']}" for t in health
           if t["TargetHealth"]["State"] != "healthy"]
    if not states:
        return Check(name, False, "no targets registered")
    return Check(name, not bad, f"{len(states) - len(bad)}/{len(states)} healthy" + (f" ({', '.join(bad)})"
                                                                                     if bad else ""))


def databases(rds, cloudwatch, outputs: dict, max_lag: float) -> list[Check]:
    checks = []
    for identifier in [outputs["databaseIdentifier"], *outputs["databaseReplicaIdentifiers"]]:
        role = "primary" if identifier == outputs["databaseIdentifier"] else "replica"
        name = f"RDS {role} {identifier}"
        with reported(f"describing {identifier}"):
            found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        status = found["DBInstanceStatus"]
        if status != "available":
            checks.append(Check(name, False, f"status {status}"))
            continue
        if role == "primary":
            checks.append(Check(name, True, "available"))
            continue
        lag = replica_lag(cloudwatch, identifier)
        if lag is None:
            checks.append(Check(name, False, "available, but no ReplicaLag data in the last 10 minutes"))
        else:
            checks.append(Check(name, lag <= max_lag, f"available, replica lag {lag:.0f} s (max {max_lag:.0f} s)"))
    return checks


def replica_lag(cloudwatch, identifier: str) -> float | None:
    now = datetime.now(UTC)
    with reported(f"reading ReplicaLag of {identifier}"):
        points = cloudwatch.get_metric_statistics(
            # The end reaches past now so the current, still open minute counts.
            Namespace="AWS/RDS", MetricName="ReplicaLag", StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=1),
            Period=60, Statistics=["Maximum"],
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": identifier}])["Datapoints"]
    if not points:
        return None
    return max(points, key=lambda p: p["Timestamp"])["Maximum"]


def cache(elasticache, outputs: dict) -> Check:
    group = outputs["redisReplicationGroupId"]
    with reported(f"describing replication group {group}"):
        found = elasticache.describe_replication_groups(ReplicationGroupId=group)["ReplicationGroups"][0]
    return Check(f"Redis {group}", found["Status"] == "available", f"status {found['Status']}")


def health(url: str, timeout: float, token: str = "") -> Check:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        token = ""  # never a token over plain HTTP off this machine
    target = url.rstrip("/") + ("/health/detailed" if token else "/health")
    name = f"GET {target}" + ("" if token else " (set VERIFY_API_TOKEN to check /health/detailed)")
    request = urllib.request.Request(target, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        return Check(name, False, f"no answer: {getattr(error, 'reason', error)}")
    try:
        failing = json.loads(body).get("failed", [])  # the app's own list of failing checks
    except (ValueError, AttributeError):
        return Check(name, False, f"HTTP {status}, not JSON")
    detail = f"HTTP {status}" + (f", failing: {', '.join(failing)}" if failing else "")
    return Check(name, status == 200, detail)


def verify(outputs: dict, max_lag: float, timeout: float) -> list[Check]:
    """Every check runs; one that cannot (a resource gone, a call refused) is a FAIL line, not the end."""
    region = outputs["region"]
    steps = [
        ("ECS service", lambda: [service(client("ecs", region), outputs)]),
        ("load balancer targets", lambda: [targets(client("elbv2", region), outputs)]),
        ("RDS", lambda: databases(client("rds", region), client("cloudwatch", region), outputs, max_lag)),
        ("Redis", lambda: [cache(client("elasticache", region), outputs)]),
        ("health", lambda: [health(outputs["url"], timeout, os.environ.get("VERIFY_API_TOKEN", ""))]),
    ]
    checks = []
    for name, step in steps:
        try:
            checks += step()
        except OpsError as error:
            checks.append(Check(name, False, str(error)))
    return checks


def run(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m ops.verify", description=__doc__.split("\n\n")[0])
    cli.add_argument("outputs", help="`pulumi stack output --json` in a file, or - for stdin")
    cli.add_argument("--max-replica-lag", type=float, default=30.0, help="seconds (default 30)")
    cli.add_argument("--timeout", type=float, default=10.0, help="seconds for the HTTP check (default 10)")
    cli.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                     help="keep checking every 15 s until all pass or this long has passed (a deployment's rollout "
                          "and its alarm watch take a while after `pulumi up` returns); default: check once")
    args = cli.parse_args(argv)
    outputs = load_outputs(args.outputs)
    deadline = time.monotonic() + args.wait
    while True:
        checks = verify(outputs, args.max_replica_lag, args.timeout)
        if all(c.ok for c in checks) or time.monotonic() >= deadline:
            break
        print(f"{sum(not c.ok for c in checks)} checks failing; checking again in {RETRY_SECONDS} s", file=sys.stderr)
        time.sleep(RETRY_SECONDS)
    for check in checks:
        print(check)
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed" + (": NOT healthy" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(run))
