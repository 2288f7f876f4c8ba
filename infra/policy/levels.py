"""`python -m infra.policy.levels`: write the per-stack policy configuration files (<stack>.json) that
`pulumi preview --policy-pack-config` takes: each rule's enforcement level in the tier, and the values of the tier
requirements it checks (both from infra/tiers/requirements.py). A test keeps them current."""

import json
from pathlib import Path

from infra import tiers
from infra.policy.rules import LEVELS

HERE = Path(__file__).resolve().parent


def config(tier: str) -> dict:
    return {name: {"enforcementLevel": level.value, **tiers.policy_config(tier, name)}
            for name, level in sorted(LEVELS[tier].items())}


def main() -> None:
    for tier in LEVELS:
        (HERE / f"{tier}.json").write_text(json.dumps(config(tier), indent=2) + "\n")


if __name__ == "__main__":
    main()
