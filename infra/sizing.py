"""Sizes AWS fixes: what a Fargate task may ask for, and how many connections an RDS PostgreSQL class allows.

Used by settings validation (the cross-layer checks), the policy pack and the monitoring thresholds: the connection
budget is written here once.
"""

from __future__ import annotations

# Fargate: task memory (MiB) allowed for each CPU value (CPU units).
FARGATE_MEMORY = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}

# Nominal memory (GiB) of RDS classes: GiB of the "large" size per family, doubled per size step.
_LARGE_GIB = {"t3": 8, "t4g": 8, "m5": 8, "m6g": 8, "m6i": 8, "m7g": 8, "m7i": 8, "r5": 16, "r6g": 16, "r6i": 16,
              "r7g": 16, "r7i": 16, "r8g": 16}
_SIZE_STEPS = {"micro": -3, "small": -2, "medium": -1, "large": 0, "xlarge": 1, "2xlarge": 2, "4xlarge": 3,
               "8xlarge": 4, "12xlarge": None, "16xlarge": 5}
_BURSTABLE = ("t3", "t4g")
# DBInstanceClassMemory is what is left after the OS and RDS processes; observed defaults put it at 88-97 % of the
# nominal memory, smallest classes lowest. 88 % keeps the estimate on the safe side.
USABLE_MEMORY = 0.88
# The application's pools may take this share of max_connections; the rest is for migrations, backups, operators.
CONNECTION_BUDGET_SHARE = 0.8
BUDGET_PERCENT = round(CONNECTION_BUDGET_SHARE * 100)  # the same share, as the messages and the alarm say it


def instance_memory_gib(instance_class: str) -> float | None:
    """Nominal memory of an RDS class (db.<family>.<size>), or None when it is not in the table."""
    try:
        _, family, size = instance_class.split(".")
    except ValueError:
        return None
    if family not in _LARGE_GIB or size not in _SIZE_STEPS:
        return None
    if size in ("micro", "small", "medium") and family not in _BURSTABLE:
        return None
    if size == "12xlarge":
        return _LARGE_GIB[family] * 24
    return _LARGE_GIB[family] * 2 ** _SIZE_STEPS[size]


def max_connections(instance_class: str) -> int | None:
    """RDS PostgreSQL's default max_connections: LEAST(DBInstanceClassMemory / 9531392, 5000)."""
    gib = instance_memory_gib(instance_class)
    if gib is None:
        return None
    return min(int(gib * 1024**3 * USABLE_MEMORY / 9531392), 5000)


def connection_budget(instance_class: str) -> int | None:
    """Connections the application's pools may hold on one instance of this class (CONNECTION_BUDGET_SHARE of its
    max_connections), or None when the class is not in the table."""
    limit = max_connections(instance_class)
    return None if limit is None else int(CONNECTION_BUDGET_SHARE * limit)


def connections(max_tasks: int, workers: int, pool_size: int, max_overflow: int) -> int:
    """The most connections the application opens to one database instance: every worker of every task, pool and
    overflow full."""
    return max_tasks * workers * (pool_size + max_overflow)


def known_instance_classes() -> str:
    return "db.{" + ",".join(sorted(_LARGE_GIB)) + "}.{micro,small,medium (t only),large..16xlarge}"
