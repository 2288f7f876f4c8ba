"""`flask --app webapp backup create|list|prune|restore|drill`: the commands the scheduled ECS tasks and operators
run. Every failure is one line on stderr naming the problem, and exit code 1.

boto3 is imported only when a command runs: the web workers, which register these commands, never load it."""

from __future__ import annotations

import functools
import sys

import click
import psycopg
from flask import current_app
from flask.cli import AppGroup

from webapp.backups import BackupError
from webapp.backups.settings import BackupSettings
from webapp.config import ConfigError
from webapp.credentials import CredentialsError, DatabaseLogin
from webapp.postgres import ConnectError, Database

MiB = 1024 * 1024

backup_cli = AppGroup("backup", help="Logical backups of the database to S3, restore and the restore drill.")


def reported(command):
    """BackupError, a bad BACKUP_* value, and what PostgreSQL or the disk refuse mid-way -> 'Error: ...' on stderr
    and exit 1; no traceback."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (BackupError, ConfigError, ConnectError, CredentialsError) as err:
            raise click.ClickException(str(err)) from None
        except psycopg.Error as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise click.ClickException(f"PostgreSQL refused: {first}") from None
        except OSError as err:
            raise click.ClickException(f"{err.strerror or err} ({err.filename or 'local file'}): check the disk "
                                       "space and BACKUP_WORK_DIR") from None
    return run


def source_database() -> Database:
    """The application's database, logged in as the application is (DATABASE_SECRET_ARN or the URL's user)."""
    database = Database.from_url(current_app.config["SQLALCHEMY_DATABASE_URI"], application_name="webapp-backup")
    if current_app.config["DATABASE_SECRET_ARN"]:
        database = database.as_user(*DatabaseLogin(current_app.config["DATABASE_SECRET_ARN"]).current())
    return database


def open_store(database: Database, settings: BackupSettings):
    from webapp.backups.store import BackupStore

    return BackupStore(settings.bucket, settings.prefix, database.name, settings.kms_key_id, settings.region or None)


def part_size(settings: BackupSettings) -> int:
    return settings.part_size_mb * MiB


@backup_cli.command("create")
@click.option("--prune", is_flag=True, help="Then delete backups older than BACKUP_RETENTION_DAYS (never the newest).")
@reported
def create_command(prune):
    """Dump the database into a new backup."""
    from webapp.backups import jobs

    settings = BackupSettings.from_environment()
    database = source_database()
    store = open_store(database, settings)
    backup, manifest = jobs.create_backup(store, database, current_app.config["APP_VERSION"], part_size(settings),
                                          compression=settings.compression)
    click.echo(f"backup {backup.stamp}: s3://{settings.bucket}/{backup.key}, "
               f"{backup.size / MiB:.1f} MiB in {manifest['parts']} parts, sha256 {manifest['sha256']}")
    if prune:
        days = settings.retention_days
        pruned = jobs.prune(store, days)
        report_locked(pruned)
        click.echo(f"pruned {len(pruned.deleted)} backups older than {days} days, {len(pruned.kept)} kept")


@backup_cli.command("list")
@reported
def list_command():
    """List finished backups, oldest first."""
    settings = BackupSettings.from_environment()
    database = source_database()
    backups = open_store(database, settings).backups()
    for backup in backups:
        click.echo(f"{backup.stamp}  {backup.size / MiB:10.1f} MiB  {backup.key}")
    click.echo(f"{len(backups)} backups of {database.name}")


@backup_cli.command("prune")
@click.option("--older-than-days", type=int, default=None,
              help="Retention in days (default BACKUP_RETENTION_DAYS). The newest backup is always kept.")
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted.")
@reported
def prune_command(older_than_days, dry_run):
    """Delete backups older than the retention, never the newest."""
    from webapp.backups import jobs

    settings = BackupSettings.from_environment()
    days = older_than_days if older_than_days is not None else settings.retention_days
    pruned = jobs.prune(open_store(source_database(), settings), days, dry_run=dry_run)
    for backup in pruned.deleted:
        click.echo(f"{'would delete' if dry_run else 'deleted'} {backup.stamp} {backup.key}")
    report_locked(pruned)
    click.echo(f"{len(pruned.deleted)} {'to delete' if dry_run else 'deleted'}, {len(pruned.kept)} kept "
               f"(retention {days} days)")


def report_locked(pruned) -> None:
    for backup, until in pruned.locked.items():
        click.echo(f"kept {backup.stamp} {backup.key}: past the retention, but under S3 Object Lock until "
                   f"{until:%Y-%m-%d %H:%M} UTC (not forced)")


@backup_cli.command("restore")
@click.option("--backup", "which", default="latest", show_default=True, help="'latest', a stamp, or a dump key.")
@click.option("--target-database", required=True,
              help="Database to restore into, on the same server as DATABASE_*; it must exist.")
@click.option("--force", is_flag=True, help="Restore into a non-empty database, replacing the objects in the dump.")
@reported
def restore_command(which, target_database, force):
    """Download a backup, verify its checksum and restore it into a database."""
    from webapp.backups import jobs

    settings = BackupSettings.from_environment()
    database = source_database()
    store = open_store(database, settings)
    backup = store.find(which)
    counts = jobs.restore_backup(store, backup, database.named(target_database), force, settings.work_dir or None)
    click.echo(f"restored backup {backup.stamp} ({backup.size / MiB:.1f} MiB) into {target_database}:")
    for table, rows in counts.items():
        click.echo(f"  {table}: {rows} rows")


@backup_cli.command("drill")
@reported
def drill_command():
    """Backup, restore into a scratch database, compare every table with the source; exit 1 on any difference."""
    from webapp.backups import jobs

    settings = BackupSettings.from_environment()
    database = source_database()
    report = jobs.drill(open_store(database, settings), database, current_app.config["APP_VERSION"],
                        part_size(settings), settings.work_dir or None, settings.compression)
    click.echo(f"restore drill of backup {report.backup.stamp} into {report.scratch_database} (dropped): backup "
               f"{report.backup_seconds:.1f} s, restore {report.restore_seconds:.1f} s")
    for table, before, after, match in report.tables:
        click.echo(f"  {'ok      ' if match else 'MISMATCH'} {table}: source {before} rows, restored {after} rows")
    click.echo("drill passed" if report.ok else "drill FAILED: the restored data differs from the source")
    if not report.ok:
        sys.exit(1)
