"""Fixtures for the infrastructure tests: each stack run once per session, settings for component tests."""

import pytest

from infra import settings
from infra.components import AwsContext
from infra.offline import harness

STACKS = ("dev", "staging", "prod")
CONTEXT = AwsContext(account_id=harness.ACCOUNT, partition="aws", region="eu-west-1")
KEY_ARN = f"arn:aws:kms:eu-west-1:{harness.ACCOUNT}:key/11111111-2222-4333-8444-555555555555"


def settings_for(tier: str, **groups) -> settings.Settings:
    """Valid settings of a tier with some groups' keys overridden, e.g. settings_for("dev", cache={"nodes": 2})."""
    raw = {key: value for key, value in groups.items()}
    if tier == "prod":
        raw.setdefault("snapshots", {}).setdefault("copyRegion", "eu-central-1")
    if tier != "dev":
        raw.setdefault("monitoring", {}).setdefault("alarmEmails", ["ops@example.com"])
    lb = raw.setdefault("loadBalancer", {})
    if tier == "dev":
        lb.setdefault("allowHttp", True)
    else:
        lb.setdefault("domain", f"{tier}.example.com")
        lb.setdefault("hostedZoneId", "Z0123456789EXAMPLE")
    return settings.from_config("flask-aws", tier, "eu-west-1", raw)


@pytest.fixture(scope="session")
def stacks() -> dict[str, harness.Run]:
    return {stack: harness.run_stack(stack) for stack in STACKS}


@pytest.fixture(scope="session")
def dev_without_backups() -> harness.Run:
    return harness.run_stack("dev", overrides={"backups": {"enabled": False}})


@pytest.fixture
def cached_runs(stacks, monkeypatch):
    """The plan command on the session's stack runs: its own logic tested without running the program again."""
    monkeypatch.setattr(harness, "run_stack", lambda stack, **_: stacks[stack])
