"""RDS manual snapshots: create (tagged, waited for), copy to a second region under a key there, list, prune.

    python -m ops.snapshots create --db flask-aws-prod-db [--tag reason=pre-migration]
    python -m ops.snapshots copy --snapshot <id> --to-region eu-central-1 --kms-key alias/flask-aws-prod-copy
    python -m ops.snapshots list --db flask-aws-prod-db
    python -m ops.snapshots prune --db flask-aws-prod-db --older-than-days 30 --keep 3 [--dry-run] [--all-manual]

Automated snapshots belong to RDS (the backup retention deletes them): this never copies over, renames or deletes
one. The prune deletes only manual snapshots this tool created (tag managed-by=ops.snapshots) unless --all-manual.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from ops import OpsError
from ops.aws import client, error_code, main, reported

TAG = {"Key": "managed-by", "Value": "ops.snapshots"}


def snapshot_id(db: str, now: datetime | None = None) -> str:
    """<db>-manual-YYYYmmdd-HHMMSS-mmm (UTC): letters, digits and single hyphens, as RDS requires."""
    return f"{db}-manual-{(now or datetime.now(UTC)).strftime('%Y%m%d-%H%M%S-%f')[:-3]}"


def parse_tags(pairs: list[str]) -> list[dict]:
    tags = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise OpsError(f"--tag {pair!r}: write key=value")
        tags.append({"Key": key, "Value": value})
    return tags


def create(rds, db: str, tags: list[dict], wait_delay: int = 15, wait_minutes: int = 120) -> dict:
    identifier = snapshot_id(db)
    with reported(f"creating snapshot {identifier} of {db}"):
        rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=identifier,
                               Tags=[TAG, {"Key": "db-instance", "Value": db}, *tags])
    return wait(rds, identifier, wait_delay, wait_minutes)


def wait(rds, identifier: str, delay: int, minutes: int) -> dict:
    with reported(f"waiting for snapshot {identifier} to be available"):
        rds.get_waiter("db_snapshot_available").wait(
            DBSnapshotIdentifier=identifier,
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, minutes * 60 // delay)})
        return rds.describe_db_snapshots(DBSnapshotIdentifier=identifier)["DBSnapshots"][0]


def copy(source_rds, target_rds, identifier: str, source_region: str, kms_key: str, wait_delay: int = 15,
         wait_minutes: int = 240) -> dict:
    """Copy a snapshot into the target region, re-encrypted with a key of that region; tags come along."""
    with reported(f"reading snapshot {identifier}"):
        snapshot = _find(source_rds, identifier)
    if snapshot["SnapshotType"] != "manual":
        raise OpsError(f"{identifier} is an automated snapshot: copy a manual one (create it first)")
    target_id = f"{identifier}-copy"
    with reported(f"copying {identifier} to {target_rds.meta.region_name} with key {kms_key}"):
        target_rds.copy_db_snapshot(SourceDBSnapshotIdentifier=snapshot["DBSnapshotArn"],
                                    TargetDBSnapshotIdentifier=target_id, KmsKeyId=kms_key, CopyTags=True,
                                    SourceRegion=source_region)
    return wait(target_rds, target_id, wait_delay, wait_minutes)


def all_snapshots(rds, db: str, **filters) -> list[dict]:
    """Every snapshot of db (all pages), oldest first; one still being created (no time yet) last."""
    found = []
    with reported(f"listing snapshots of {db}"):
        for page in rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=db, **filters):
            found += page["DBSnapshots"]
    far_future = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda s: s.get("SnapshotCreateTime") or far_future)


def manual_snapshots(rds, db: str, all_manual: bool = False) -> list[dict]:
    """Available manual snapshots of db, oldest first; only ours unless all_manual. Snapshots being created,
    copied or failed are neither counted among the kept nor deleted."""
    return [s for s in all_snapshots(rds, db, SnapshotType="manual")
            if s["SnapshotType"] == "manual" and s.get("Status") == "available" and "SnapshotCreateTime" in s
            and (all_manual or TAG in s.get("TagList", []))]


def prune(rds, db: str, older_than_days: int, keep: int, dry_run: bool = False, all_manual: bool = False,
          now: datetime | None = None) -> tuple[list[dict], list[dict]]:
    """Delete manual snapshots older than the cutoff, always keeping the newest `keep`. Returns (deleted, kept)."""
    if keep < 1:
        raise OpsError(f"--keep {keep}: keep at least the newest snapshot")
    if older_than_days < 1:
        raise OpsError(f"--older-than-days {older_than_days}: give at least 1")
    snapshots = manual_snapshots(rds, db, all_manual)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    expired = [s for s in snapshots[:-keep] if s["SnapshotCreateTime"] < cutoff]
    for snapshot in expired if not dry_run else []:
        with reported(f"deleting snapshot {snapshot['DBSnapshotIdentifier']}"):
            rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"])
    return expired, [s for s in snapshots if s not in expired]


def _find(rds, identifier: str) -> dict:
    try:
        return rds.describe_db_snapshots(DBSnapshotIdentifier=identifier)["DBSnapshots"][0]
    except ClientError as error:
        if error_code(error) == "DBSnapshotNotFound":
            raise OpsError(f"no snapshot {identifier}: `python -m ops.snapshots list --db <instance>` lists "
                           "them") from None
        raise


def describe(snapshot: dict) -> str:
    created = snapshot.get("SnapshotCreateTime")
    return (f"{snapshot['DBSnapshotIdentifier']}  {snapshot['SnapshotType']:9}  {snapshot['Status']:9}  "
            f"{f'{created:%Y-%m-%d %H:%M}' if created else 'in progress':16}  "
            f"{snapshot.get('AllocatedStorage', '?')} GiB")


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m ops.snapshots", description=__doc__.split("\n\n")[0])
    cli.add_argument("--region", help="the database's region (default: the AWS configuration's)")
    cli.add_argument("--wait-delay", type=int, default=15, help=argparse.SUPPRESS)
    commands = cli.add_subparsers(dest="command", required=True)
    made = commands.add_parser("create", help="a tagged manual snapshot, waited for")
    made.add_argument("--db", required=True, help="DB instance identifier (stack output databaseIdentifier)")
    made.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    copied = commands.add_parser("copy", help="copy a manual snapshot to another region under a key there")
    copied.add_argument("--snapshot", required=True)
    copied.add_argument("--to-region", required=True)
    copied.add_argument("--kms-key", required=True, help="key id, ARN or alias in the target region")
    listed = commands.add_parser("list", help="every snapshot of an instance, oldest first")
    listed.add_argument("--db", required=True)
    pruned = commands.add_parser("prune", help="delete old manual snapshots, keeping the newest K")
    pruned.add_argument("--db", required=True)
    pruned.add_argument("--older-than-days", type=int, required=True)
    pruned.add_argument("--keep", type=int, default=3, help="newest snapshots always kept (default 3)")
    pruned.add_argument("--dry-run", action="store_true")
    pruned.add_argument("--all-manual", action="store_true", help="also manual snapshots this tool did not make")
    return cli


def run(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with reported("setting up the RDS client"):
        rds = client("rds", args.region)
    if args.command == "create":
        print(describe(create(rds, args.db, parse_tags(args.tag), args.wait_delay)))
    elif args.command == "copy":
        with reported("setting up the RDS client of the target region"):
            target = client("rds", args.to_region)
        if target.meta.region_name == rds.meta.region_name:
            raise OpsError(f"--to-region {args.to_region} is the snapshot's own region: a copy there does not "
                           "survive a regional outage")
        print(describe(copy(rds, target, args.snapshot, rds.meta.region_name, args.kms_key, args.wait_delay)))
    elif args.command == "list":
        snapshots = all_snapshots(rds, args.db)
        for snapshot in snapshots:
            print(describe(snapshot))
        print(f"{len(snapshots)} snapshots of {args.db}")
    else:
        deleted, kept = prune(rds, args.db, args.older_than_days, args.keep, args.dry_run, args.all_manual)
        for snapshot in deleted:
            print(f"{'would delete' if args.dry_run else 'deleted'} {snapshot['DBSnapshotIdentifier']}")
        print(f"{len(deleted)} {'to delete' if args.dry_run else 'deleted'}, {len(kept)} manual kept")
    return 0


if __name__ == "__main__":
    sys.exit(main(run))
