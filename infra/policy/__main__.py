"""The policy pack `pulumi preview --policy-pack infra/policy --policy-pack-config infra/policy/<stack>.json`
runs: the rules of rules.py, enforcement per stack from the config file (written from rules.LEVELS by
`python -m infra.policy.levels`)."""

import sys
from pathlib import Path

# The engine runs the pack from this folder; the rules import the project's own modules (sizing) from the root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from infra.policy.rules import POLICIES  # noqa: E402

PolicyPack(name="flask-aws-checklist", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES,
           description="The deployment checklist and AWS hardening for the flask-aws stacks")
