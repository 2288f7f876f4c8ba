"""ops.snapshots against moto's RDS and KMS: create, copy to a second region, list, prune; automated snapshots are
never touched."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from ops import OpsError, snapshots
from ops.aws import main

DB = "flask-aws-prod-db"


@pytest.fixture
def rds(aws):
    client = boto3.client("rds")
    client.create_db_instance(DBInstanceIdentifier=DB, DBInstanceClass="db.t4g.micro", Engine="postgres",
                              MasterUsername="app_admin", MasterUserPassword="a-long-test-password",
                              AllocatedStorage=20, BackupRetentionPeriod=7)
    return client


def cli(capsys, *argv):
    code = main(lambda: snapshots.run(["--wait-delay", "1", *argv]))
    out = capsys.readouterr()
    return code, out.out, out.err


def tags(snapshot) -> dict:
    return {t["Key"]: t["Value"] for t in snapshot.get("TagList", [])}


def test_create_makes_a_tagged_manual_snapshot_and_waits_for_it(rds, capsys):
    code, out, _ = cli(capsys, "create", "--db", DB, "--tag", "reason=pre-migration")
    assert code == 0 and f"{DB}-manual-" in out and "available" in out
    (made,) = rds.describe_db_snapshots(DBInstanceIdentifier=DB, SnapshotType="manual")["DBSnapshots"]
    assert made["Status"] == "available"
    assert tags(made) == {"managed-by": "ops.snapshots", "db-instance": DB, "reason": "pre-migration"}


def test_bad_input_is_one_line_and_exit_1(rds, capsys):
    code, _, err = cli(capsys, "create", "--db", "no-such-db")
    assert code == 1 and err.startswith("error: creating snapshot") and "DBInstanceNotFound" in err
    code, _, err = cli(capsys, "create", "--db", DB, "--tag", "novalue")
    assert code == 1 and "--tag 'novalue': write key=value" in err
    code, _, err = cli(capsys, "copy", "--snapshot", "nope", "--to-region", "eu-central-1", "--kms-key", "k")
    assert code == 1 and "no snapshot nope" in err
    assert "Traceback" not in err


def test_copy_goes_to_the_second_region_under_its_key_with_the_tags(rds, capsys):
    made = snapshots.create(rds, DB, [], wait_delay=1)
    key = boto3.client("kms", region_name="eu-central-1").create_key()["KeyMetadata"]["Arn"]
    code, out, err = cli(capsys, "copy", "--snapshot", made["DBSnapshotIdentifier"], "--to-region", "eu-central-1",
                         "--kms-key", key)
    assert code == 0, err
    (copy,) = boto3.client("rds", region_name="eu-central-1").describe_db_snapshots(
        DBSnapshotIdentifier=made["DBSnapshotIdentifier"] + "-copy")["DBSnapshots"]
    assert copy["KmsKeyId"] == key and ":eu-central-1:" in copy["DBSnapshotArn"]
    assert tags(copy)["managed-by"] == "ops.snapshots"


def test_copy_refuses_an_automated_snapshot_and_the_same_region(rds, capsys):
    (automated,) = rds.describe_db_snapshots(DBInstanceIdentifier=DB, SnapshotType="automated")["DBSnapshots"]
    with pytest.raises(OpsError, match="automated snapshot"):
        snapshots.copy(rds, boto3.client("rds", region_name="eu-central-1"), automated["DBSnapshotIdentifier"],
                       "eu-west-1", "alias/x", wait_delay=1)
    code, _, err = cli(capsys, "copy", "--snapshot", automated["DBSnapshotIdentifier"], "--to-region", "eu-west-1",
                       "--kms-key", "alias/x")
    assert code == 1 and "the snapshot's own region" in err


def test_prune_keeps_the_newest_k_and_never_touches_automated_or_foreign_snapshots(rds, capsys):
    ours = [snapshots.create(rds, DB, [], wait_delay=1) for _ in range(4)]
    rds.create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier="before-the-big-migration")
    later = ours[-1]["SnapshotCreateTime"] + timedelta(days=40)

    deleted, kept = snapshots.prune(rds, DB, older_than_days=30, keep=2, dry_run=True, now=later)
    assert [s["DBSnapshotIdentifier"] for s in deleted] == [s["DBSnapshotIdentifier"] for s in ours[:2]]
    assert len(rds.describe_db_snapshots(DBInstanceIdentifier=DB)["DBSnapshots"]) == 6  # dry run: nothing gone

    snapshots.prune(rds, DB, older_than_days=30, keep=2, now=later)
    left = {s["DBSnapshotIdentifier"]: s["SnapshotType"]
            for s in rds.describe_db_snapshots(DBInstanceIdentifier=DB)["DBSnapshots"]}
    assert set(left) >= {s["DBSnapshotIdentifier"] for s in ours[2:]} | {"before-the-big-migration"}
    assert list(left.values()).count("automated") == 1 and len(left) == 4
    # Within the age limit nothing goes. With --all-manual the foreign snapshot counts, here as the newest kept:
    # both of ours go (only ours counted, keep=1 would keep ours[3]).
    assert snapshots.prune(rds, DB, older_than_days=30, keep=1)[0] == []
    deleted, kept = snapshots.prune(rds, DB, older_than_days=30, keep=1, all_manual=True, now=later)
    assert [s["DBSnapshotIdentifier"] for s in deleted] == [s["DBSnapshotIdentifier"] for s in ours[2:]]
    assert [s["DBSnapshotIdentifier"] for s in kept] == ["before-the-big-migration"]
    with pytest.raises(OpsError, match="keep at least the newest"):
        snapshots.prune(rds, DB, older_than_days=30, keep=0)


def test_list_and_prune_commands(rds, capsys):
    snapshots.create(rds, DB, [], wait_delay=1)
    code, out, _ = cli(capsys, "list", "--db", DB)
    assert code == 0 and "automated" in out and "manual" in out and out.strip().endswith(f"2 snapshots of {DB}")
    code, out, _ = cli(capsys, "prune", "--db", DB, "--older-than-days", "30", "--dry-run")
    assert code == 0 and "0 to delete, 1 manual kept" in out


class OnePage:
    """An RDS client answering describe_db_snapshots with fixed snapshots (what moto cannot show: one in progress)."""

    def __init__(self, snapshots):
        self.snapshots = snapshots

    def get_paginator(self, name):
        assert name == "describe_db_snapshots"
        return self

    def paginate(self, **filters):
        return [{"DBSnapshots": [s for s in self.snapshots
                                 if filters.get("SnapshotType") in (None, s["SnapshotType"])]}]


def test_a_snapshot_in_progress_is_listed_and_neither_kept_nor_pruned():
    """RDS leaves out SnapshotCreateTime while a snapshot is being created."""
    from datetime import UTC, datetime

    old = {"DBSnapshotIdentifier": "old", "SnapshotType": "manual", "Status": "available",
           "SnapshotCreateTime": datetime(2026, 1, 1, tzinfo=UTC), "TagList": [snapshots.TAG]}
    creating = {"DBSnapshotIdentifier": "creating", "SnapshotType": "manual", "Status": "creating",
                "TagList": [snapshots.TAG]}
    rds = OnePage([creating, old])
    assert [s["DBSnapshotIdentifier"] for s in snapshots.all_snapshots(rds, DB)] == ["old", "creating"]
    assert "in progress" in snapshots.describe(creating)
    deleted, kept = snapshots.prune(rds, DB, older_than_days=30, keep=1, dry_run=True)
    assert deleted == [] and kept == [old]  # the creating one does not count as the newest kept
    with pytest.raises(OpsError, match="give at least 1"):
        snapshots.prune(rds, DB, older_than_days=-5, keep=1)
