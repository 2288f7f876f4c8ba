"""What the backup commands do: create, restore, prune and the restore drill, from a store and a database."""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from webapp.backups import BackupError
from webapp.backups.compression import ZSTD, Compressed, uncompressing
from webapp.backups.postgres import (
    Database,
    Dump,
    create_database,
    drop_database,
    dump_tables,
    exported_snapshot,
    fingerprints,
    restore,
    row_counts,
    tool_version,
    user_tables,
)
from webapp.backups.store import Backup, BackupStore, new_stamp


def create_backup(store: BackupStore, database: Database, app_version: str, part_size: int,
                  snapshot: str | None = None, compression: int = 3) -> tuple[Backup, dict]:
    """pg_dump through zstd (level `compression`) straight into a multipart upload: no copy on local disk, one
    part in memory at a time."""
    pg_dump_version = tool_version("pg_dump")
    store.check_writable()
    if snapshot is None:
        database.connect().close()  # an unreachable database is reported before any upload starts
    stamp = new_stamp()
    metadata = {"database": database.name, "created-at": stamp, "app-version": app_version,
                "pg-dump-version": pg_dump_version, "source": f"{database.host}:{database.port}"}
    dump = Dump(database, snapshot)
    try:
        manifest = store.upload(stamp, Compressed(dump.stdout, compression).read, dump.finish, metadata, part_size,
                                compression=ZSTD)
    except BaseException:
        dump.kill()
        raise
    return Backup(stamp, manifest["key"], manifest["size"]), manifest


def restore_backup(store: BackupStore, backup: Backup, target: Database, force: bool,
                   work_dir: str | None = None) -> dict[str, int]:
    """Verify, then restore into target; returns the row count of every table restored."""
    with target.connect() as connection:
        tables = user_tables(connection)
    if tables and not force:
        names = ", ".join(f"{schema}.{table}" for schema, table in tables[:3])
        raise BackupError(f"{target} is not empty ({len(tables)} tables: {names}{', ...' if len(tables) > 3 else ''}):"
                          " restore into an empty database, or pass --force to replace the objects in the dump")
    manifest = store.manifest(backup)
    with tempfile.NamedTemporaryFile(prefix="restore-", suffix=".dump", dir=work_dir) as file:
        with uncompressing(manifest, file) as sink:
            store.download(backup, manifest, sink)
        restored = dump_tables(file.name)
        restore(target, file.name, clean=force)
    with target.connect() as connection:
        return row_counts(connection, only=restored)


@dataclass
class Pruned:
    """What a prune did: the backups deleted (or, in a dry run, to delete), those kept, and among those kept the
    ones past the retention that S3 Object Lock still holds (backup -> until when): reported, never forced."""

    deleted: list[Backup]
    kept: list[Backup]
    locked: dict[Backup, datetime] = field(default_factory=dict)


def prune(store: BackupStore, older_than_days: int, dry_run: bool = False, now: datetime | None = None) -> Pruned:
    """Delete backups older than the retention, never the newest one, and none under S3 Object Lock."""
    if older_than_days < 1:
        raise BackupError(f"retention of {older_than_days} days: give at least 1 day")
    backups = store.backups()
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=older_than_days)
    locked = {}
    for backup in (b for b in backups[:-1] if b.created < cutoff):
        until = store.locked_until(backup)
        if until and until > now:
            locked[backup] = until
    expired = [b for b in backups[:-1] if b.created < cutoff and b not in locked]
    if not dry_run:
        for backup in expired:
            store.delete(backup)
    return Pruned(expired, [backup for backup in backups if backup not in expired], locked)


@dataclass
class DrillReport:
    backup: Backup
    scratch_database: str
    tables: list[tuple[str, int | None, int | None, bool]] = field(default_factory=list)
    backup_seconds: float = 0.0
    restore_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.tables) and all(match for *_, match in self.tables)


def drill(store: BackupStore, database: Database, app_version: str, part_size: int,
          work_dir: str | None = None, compression: int = 3) -> DrillReport:
    """Backup -> restore into a scratch database on the same server -> compare every table's row count and checksum
    with the source as the dump saw it (same snapshot) -> drop the scratch database."""
    started = time.monotonic()
    with exported_snapshot(database) as (connection, snapshot):
        backup, _ = create_backup(store, database, app_version, part_size, snapshot=snapshot,
                                  compression=compression)
        source = fingerprints(connection)
    report = DrillReport(backup, f"restore_drill_{backup.stamp[:15].lower()}",
                         backup_seconds=time.monotonic() - started)
    scratch = database.named(report.scratch_database)
    create_database(database, scratch.name)
    try:
        started = time.monotonic()
        restore_backup(store, backup, scratch, force=False, work_dir=work_dir)
        report.restore_seconds = time.monotonic() - started
        with scratch.connect() as connection:
            restored = fingerprints(connection)
    except BaseException:
        with contextlib.suppress(Exception):  # the first failure is the one to report
            drop_database(database, scratch.name)
        raise
    drop_database(database, scratch.name)
    for table in sorted(source.keys() | restored.keys()):
        before, after = source.get(table), restored.get(table)
        report.tables.append((table, before and before[0], after and after[0], before == after))
    return report
