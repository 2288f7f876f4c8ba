"""Logical backups of the PostgreSQL database to S3, their restore, retention and the restore drill.

Run as `flask --app webapp backup ...` (cli.py) in the application image, so the scheduled ECS tasks use the very
image and configuration that serve traffic. A backup is two objects under BACKUP_PREFIX/<database>/:
<stamp>.dump (pg_dump custom format, uploaded in parts while pg_dump writes it) and <stamp>.manifest.json (size,
SHA-256 and metadata), written last: without its manifest a dump is not a backup, so nothing partial is ever
listed, restored or counted by the prune.
"""


class BackupError(Exception):
    """An operation that cannot go on; the message names the problem and what to do about it."""
