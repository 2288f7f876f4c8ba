"""The configuration reference in README.md, generated from the schema, the tier defaults and the tier
requirements (a test keeps the README's copy current)."""

from __future__ import annotations

import json
import typing
from dataclasses import is_dataclass

from infra import tiers
from infra.settings.fields import camel, config_fields
from infra.settings.problems import MISSING
from infra.settings.schema import Settings


def reference() -> str:
    """Every key with its meaning and tier defaults, then what the tiers require, as Markdown tables."""
    return keys_table() + "\n\n" + requirements_table()


def keys_table() -> str:
    rows = ["| key | meaning | dev | staging | prod |", "|---|---|---|---|---|"]
    defaults = {tier: tiers.defaults(tier) for tier in tiers.TIERS}

    def walk(cls, path, per_tier):
        cls_hints = typing.get_type_hints(cls)
        for f in config_fields(cls):
            key = path + camel(f.name)
            if is_dataclass(cls_hints[f.name]):
                walk(cls_hints[f.name], key + ".", {t: v.get(camel(f.name), {}) for t, v in per_tier.items()})
                continue
            cells = [_cell(per_tier[t].get(camel(f.name), MISSING)) for t in tiers.TIERS]
            if key == "tier":
                cells = list(tiers.TIERS)
            rows.append(f"| `{key}` | {f.metadata['doc']} | " + " | ".join(cells) + " |")

    walk(Settings, "", defaults)
    return "\n".join(rows)


def requirements_table() -> str:
    """The tier requirements: refused before any resource, and checked again by the policy pack."""
    rows = ["| key | required | in | why | policy-pack rule |", "|---|---|---|---|---|"]
    for r in tiers.REQUIREMENTS:
        for tier in r.tiers:
            why, allowed = r.explain(tier)
            rows.append(f"| `{r.key}` | {allowed} | {tier} | {why} | `{r.policy}` |")
    return "\n".join(rows)


def _cell(value) -> str:
    if value is MISSING:
        return "(required)"
    if value == "" or value == {}:
        return "(empty)"
    return "`" + json.dumps(value).strip('"') + "`"
