"""Typed, validated settings for one stack: the tier's defaults overridden key by key by the stack file.

    schema.py     the dataclasses: one field per key, its one-line doc, the check of its value, its shape; the
                  foundation and the data tier, and the root Settings
    serving.py    the serving path's groups: image, load balancer, firewall, service, monitoring
    fields.py     setting() (doc, check, shape), camelCase keys, value_at()
    values.py     checks on one value (ranges, names, windows)
    checks.py     rules across values: what AWS would refuse, the tier's requirements, cross-layer agreement
    problems.py   Problem and SettingsError: every problem listed at once, before any resource is declared
    load.py       tier defaults + stack file -> Settings (load() in the program, from_config() without it)
    reference.py  the configuration reference in README.md

Components receive these objects; they never read config themselves.
"""

from infra.settings.load import from_config, load
from infra.settings.problems import Problem, SettingsError
from infra.settings.reference import reference
from infra.settings.schema import (
    BackupsSettings,
    CacheSettings,
    DatabaseSettings,
    LogSettings,
    NetworkSettings,
    SecretsSettings,
    Settings,
    SnapshotSettings,
)
from infra.settings.serving import (
    FirewallSettings,
    ImageSettings,
    LoadBalancerSettings,
    MonitoringSettings,
    ServiceSettings,
)

__all__ = ["BackupsSettings", "CacheSettings", "DatabaseSettings", "FirewallSettings", "ImageSettings",
           "LoadBalancerSettings", "LogSettings", "MonitoringSettings", "NetworkSettings", "Problem",
           "SecretsSettings", "ServiceSettings", "Settings", "SettingsError", "SnapshotSettings", "from_config",
           "load", "reference"]
