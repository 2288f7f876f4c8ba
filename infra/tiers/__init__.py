"""The tiers (dev, staging, prod) as data: their defaults (defaults.py) and what each insists on
(requirements.py). Settings validation, the policy pack and the parity report read both; nothing else decides
how the tiers differ."""

from infra.tiers.defaults import COMMON, TIERS, WHY_TIERS_DIFFER, defaults, merge
from infra.tiers.requirements import (
    AT_LEAST,
    ENFORCEMENT,
    EXACTLY,
    REQUIREMENTS,
    SET,
    Requirement,
    level,
    policy_config,
    strictest,
)

__all__ = ["AT_LEAST", "COMMON", "ENFORCEMENT", "EXACTLY", "REQUIREMENTS", "SET", "TIERS", "WHY_TIERS_DIFFER",
           "Requirement", "defaults", "level", "merge", "policy_config", "strictest"]
