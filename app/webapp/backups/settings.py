"""What the backup commands read from the environment. Only the scheduled backup tasks and operators use these, so
they are read when a command runs (and by preflight), not carried in the web app's config classes."""

from __future__ import annotations

import os
from dataclasses import dataclass

from webapp.config import ConfigError, env_int


@dataclass(frozen=True)
class BackupSettings:
    bucket: str
    prefix: str
    kms_key_id: str
    retention_days: int
    part_size_mb: int
    compression: int
    work_dir: str
    region: str

    @classmethod
    def from_environment(cls) -> BackupSettings:
        """BACKUP_* and the AWS region; a value that is not a whole number is a ConfigError naming it."""
        return cls(bucket=os.environ.get("BACKUP_BUCKET", ""),
                   prefix=os.environ.get("BACKUP_PREFIX", "postgres"),
                   kms_key_id=os.environ.get("BACKUP_KMS_KEY_ID", ""),
                   retention_days=env_int("BACKUP_RETENTION_DAYS", 7),
                   part_size_mb=env_int("BACKUP_PART_SIZE_MB", 8),
                   compression=compression_level(),
                   work_dir=os.environ.get("BACKUP_WORK_DIR", ""),
                   region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""))


def compression_level() -> int:
    """BACKUP_COMPRESSION: the zstd level, 1 (fastest) to 19; 3, zstd's default, by default."""
    level = env_int("BACKUP_COMPRESSION", 3)
    if not 1 <= level <= 19:
        raise ConfigError(f"BACKUP_COMPRESSION={level} is not a zstd level: give 1 (fastest) to 19 (smallest)")
    return level
