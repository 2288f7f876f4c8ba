"""Tier defaults: what dev, staging and prod get before the stack file overrides anything.

Plain data in the same shape (and camelCase keys) as the stack files, so a stack file only carries the keys that
differ. Staging has prod's topology at smaller sizes: where the tiers' defaults change which resources exist,
`WHY_TIERS_DIFFER` says why, and the parity report (`python -m infra.plan --compare`) prints it.
"""

from infra import sizing

COMMON = {
    "tags": {},
    "network": {
        "cidr": "10.0.0.0/16",
        "subnetPrefixLength": 20,
        "interfaceEndpoints": True,
        "flowLogTrafficType": "ALL",
    },
    "secrets": {
        "keyDeletionWindowDays": 30,
    },
    "database": {
        "engineVersion": "15",
        "replicaInstanceClass": "",
        "dbName": "app",
        "username": "app_admin",
        "ownerRole": "app_owner",
        "runtimeRole": "app_runtime",
        "backupRole": "app_backup",
        "drillRole": "app_drill",
        "sslMode": "verify-full",
        "backupWindow": "03:00-04:00",
        "maintenanceWindow": "sun:04:30-sun:05:30",
        "performanceInsights": True,
        "monitoringInterval": 60,
        "logMinDurationMs": 500,
    },
    "cache": {
        "engineVersion": "7.1",
        "snapshotWindow": "02:00-03:00",
        "maintenanceWindow": "sun:05:30-sun:06:30",
    },
    "image": {
        "uri": "",
        "platform": "linux/arm64",
        "keepImages": 30,
    },
    "loadBalancer": {
        "domain": "",
        "hostedZoneId": "",
        "certificateArn": "",
        "allowHttp": False,
        "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "idleTimeoutSeconds": 60,
        "healthCheckPath": "/health",
        "healthCheckIntervalSeconds": 15,
        "healthCheckTimeoutSeconds": 5,
        "healthyThreshold": 2,
        "unhealthyThreshold": 3,
        "deregistrationDelaySeconds": 20,
        "slowStartSeconds": 30,
    },
    # AWS WAF: 2000 requests per client address in 5 minutes is the app's own order of magnitude for one client (a
    # page of notes is one request); the app's finer limits are its own.
    "firewall": {
        "rateLimit": 2000,
        "rateWindowSeconds": 300,
        "countRules": [],
    },
    "service": {
        "port": 8000,
        # The notes API takes small JSON bodies; the load balancer hands AWS WAF no more than 8 KB of a body, so a
        # larger limit would let the rest reach the application uninspected.
        "maxBodyBytes": 8192,
        "threads": 4,
        "dbPoolSize": 5,
        "dbMaxOverflow": 2,
        "keepaliveSeconds": 75,
        "timeoutSeconds": 30,
        "gracefulTimeoutSeconds": 25,
        # Worker recycling off: at a few hundred requests per second a count of 2000 replaced every worker every few
        # seconds and cost two thirds of the throughput (docs/benchmarks.md). Memory, not a count, is the guard:
        # the task's memory target scales out, its hard limit replaces a leaking task.
        "maxRequests": 0,
        "stopTimeoutSeconds": 30,
        "startupSeconds": 20,
        "healthCheckGracePeriodSeconds": 60,
        "spotWeight": 0,
        "ecsExec": False,
        "publicReads": True,
        "rateLimitPerAddress": "600 per minute",
        "rateLimitWrites": "120 per minute",
        "cpuTarget": 60,
        "memoryTarget": 75,
        "requestsPerTarget": 1000,
        "scaleInCooldownSeconds": 300,
        "scaleOutCooldownSeconds": 60,
        "logLevel": "INFO",
    },
    "snapshots": {
        # 07:00 UTC: clear of the RDS backup (03:00-04:00) and maintenance (Sunday 04:30-05:30) windows, which
        # delay or expire AWS Backup jobs that start near them.
        "schedule": "cron(0 7 ? * * *)",
        "copyRegion": "",
        # Governance: the lock stops mistakes and stolen credentials short of the vault-lock permission; compliance
        # is for those who must prove nobody at all can delete, and is irreversible (docs/operations.md).
        "lockMode": "governance",
        "lockChangeableDays": 3,
    },
    "monitoring": {
        "alarmEmails": [],
        "http5xxPercent": 5,
        "p99ResponseMs": 2000,
        "taskCpuPercent": 85,
        "taskMemoryPercent": 85,
        "databaseCpuPercent": 80,
        "databaseFreeStoragePercent": 5,
        "databaseConnectionsPercent": sizing.BUDGET_PERCENT,  # alarm where the connection budget ends
        "replicaLagSeconds": 30,
        "cacheCpuPercent": 75,
        "cacheMemoryPercent": 80,
        "cacheEvictions": 100,
        "firewallBlockedPercent": 10,
    },
    "backups": {
        "enabled": True,
        # 02:30 UTC, before the RDS backup window (03:00-04:00); the drill on Saturday morning, off peak.
        "schedule": "cron(30 2 * * ? *)",
        "drillSchedule": "cron(0 6 ? * SAT *)",
        "cpu": 512,
        "memory": 1024,
        "ephemeralStorageGib": 30,
        "partSizeMb": 8,
    },
}

# Rotation windows (one hour, UTC): the application's logins and the Flask key set at 01:00, done before the 02:30
# backup; the master login at 13:00, so the runtime login's rotation, which logs in as the master, never meets a
# master rotation half done.
TIERS = {
    "dev": {
        "protect": False,
        "network": {"azCount": 2, "natGateways": "single", "interfaceEndpoints": False},
        # Rotation every day: a rotation that breaks is seen in dev first.
        "secrets": {"recoveryWindowDays": 0, "keyDeletionWindowDays": 7,
                    "rotationSchedule": "cron(0 1 * * ? *)", "masterRotationSchedule": "cron(0 13 * * ? *)"},
        "logs": {"retentionDays": 7},
        "database": {
            "instanceClass": "db.t4g.micro",
            "allocatedStorage": 20,
            "maxAllocatedStorage": 50,
            "multiAz": False,
            "replicas": 0,
            "backupRetentionDays": 1,
            "deletionProtection": False,
            "performanceInsights": False,
            "monitoringInterval": 0,
            "applyImmediately": True,
        },
        "cache": {
            "nodeType": "cache.t4g.micro",
            "nodes": 1,
            "automaticFailover": False,
            "multiAz": False,
            "snapshotRetentionDays": 0,
            "applyImmediately": True,
        },
        "snapshots": {"enabled": False, "retentionDays": 7, "lockMinRetentionDays": 1, "lockMaxRetentionDays": 35},
        # Dev's buckets are torn down freely: locked objects would hold `pulumi destroy` for the retention.
        "backups": {"retentionDays": 3, "noncurrentDays": 1, "objectLock": False},
        # Fargate Spot (dev's cost saver) runs only x86_64 tasks.
        "image": {"keepImages": 10, "platform": "linux/amd64"},
        "loadBalancer": {"deletionProtection": False, "slowStartSeconds": 0},
        # Dev counts (and logs) what the firewall would block: rules are tuned there before staging blocks.
        "firewall": {"mode": "count"},
        "service": {"cpu": 512, "memory": 1024, "minTasks": 1, "maxTasks": 2, "workers": 2, "spotWeight": 1,
                    "ecsExec": True, "appEnv": "staging"},
    },
    "staging": {
        "protect": True,
        "network": {"azCount": 3, "natGateways": "single"},
        "secrets": {"recoveryWindowDays": 7,
                    "rotationSchedule": "cron(0 1 ? * MON *)", "masterRotationSchedule": "cron(0 13 ? * MON *)"},
        "logs": {"retentionDays": 30},
        "database": {
            "instanceClass": "db.t4g.medium",
            "allocatedStorage": 50,
            "maxAllocatedStorage": 200,
            "multiAz": True,
            "replicas": 1,
            "backupRetentionDays": 7,
            "deletionProtection": True,
            "applyImmediately": False,
        },
        "cache": {
            "nodeType": "cache.t4g.small",
            "nodes": 2,
            "automaticFailover": True,
            "multiAz": True,
            "snapshotRetentionDays": 3,
            "applyImmediately": False,
        },
        "snapshots": {"enabled": True, "retentionDays": 14, "lockMinRetentionDays": 7, "lockMaxRetentionDays": 35},
        "backups": {"retentionDays": 7, "noncurrentDays": 7, "objectLock": True},
        "loadBalancer": {"deletionProtection": True},
        "firewall": {"mode": "block"},
        "service": {"cpu": 1024, "memory": 2048, "minTasks": 2, "maxTasks": 4, "workers": 2, "appEnv": "staging"},
    },
    "prod": {
        "protect": True,
        "network": {"azCount": 3, "natGateways": "perAz"},
        "secrets": {"recoveryWindowDays": 30,
                    "rotationSchedule": "cron(0 1 1 * ? *)", "masterRotationSchedule": "cron(0 13 1 * ? *)"},
        "logs": {"retentionDays": 90},
        "database": {
            "instanceClass": "db.r6g.large",
            "allocatedStorage": 100,
            "maxAllocatedStorage": 1000,
            "multiAz": True,
            "replicas": 2,
            "backupRetentionDays": 30,
            "deletionProtection": True,
            "applyImmediately": False,
        },
        "cache": {
            "nodeType": "cache.r7g.large",
            "nodes": 3,
            "automaticFailover": True,
            "multiAz": True,
            "snapshotRetentionDays": 7,
            "applyImmediately": False,
        },
        "snapshots": {"enabled": True, "retentionDays": 35, "lockMinRetentionDays": 35,
                      "lockMaxRetentionDays": 365},
        "backups": {"retentionDays": 35, "noncurrentDays": 30, "ephemeralStorageGib": 100, "partSizeMb": 16,
                    "objectLock": True},
        "loadBalancer": {"deletionProtection": True},
        "firewall": {"mode": "block"},
        "service": {"cpu": 1024, "memory": 2048, "minTasks": 3, "maxTasks": 20, "workers": 2,
                    "appEnv": "production"},
    },
}


# Why the tiers' defaults differ where the difference changes which resources exist (a setting marked `shape` in
# infra/settings/schema.py). Written for any pair of tiers: the parity report prints it beside both values.
WHY_TIERS_DIFFER = {
    "network.azCount": "RDS and the load balancer need two AZs at least; three keep serving through the loss of one",
    "network.natGateways": "a NAT gateway per AZ keeps each AZ's egress through an AZ outage; a single one costs a "
                           "third and takes every AZ's egress down with its own",
    "network.interfaceEndpoints": "interface endpoints let tasks pull images, write logs and read secrets without "
                                  "NAT; without them that traffic goes through NAT, cheaper at small volume",
    "database.replicas": "read replicas carry the reads; one exercises the same read path as several, none reads "
                         "from the primary",
    "database.monitoringInterval": "enhanced monitoring (and the role RDS publishes its OS metrics with) where the "
                                   "instances are worth watching that closely",
    "snapshots.enabled": "AWS Backup snapshots live in a vault and outlive the instance; without them only RDS's own "
                         "automated backups remain",
    "backups.objectLock": "S3 Object Lock keeps each dump its retention, whoever asks; a stack torn down often (dev) "
                          "would wait out the retention before its bucket could go",
    "service.ecsExec": "ECS Exec (a shell in the tasks, its role policy, a writable root filesystem) only where "
                       "debugging matters more than hardening",
}


def merge(base: dict, override: dict) -> dict:
    """Deep-merge override into base, key by key (nested dicts merge, everything else replaces)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def defaults(tier: str) -> dict:
    """The complete default settings of a tier."""
    return merge(COMMON, TIERS[tier])
