"""Tier defaults + stack file -> validated Settings, or one SettingsError listing every problem.

`load()` reads the running stack's config (the real engine or the mock harness); `from_config()` is the same
without the Pulumi runtime (tests and the parity report use it).
"""

from __future__ import annotations

import difflib
import json
import typing
from dataclasses import is_dataclass

from infra import tiers
from infra.settings.checks import cross_checks
from infra.settings.fields import camel, config_fields
from infra.settings.problems import MISSING, Problem, SettingsError
from infra.settings.schema import Settings
from infra.settings.values import REGION

# Keys that were renamed: a stack file still using the old name is told the new one.
RENAMED = {"backupPlan": "snapshots"}


def load() -> Settings:
    """Settings of the running Pulumi stack."""
    import pulumi

    project = pulumi.get_project()
    config = pulumi.Config(project)
    raw = {name: config.get(name) for name in _config_names(project)}
    return from_config(project, pulumi.get_stack(), pulumi.Config("aws").get("region"), raw)


def _config_names(project: str) -> list[str]:
    """Every key the stack sets in the project's namespace, typos included (they must be reported, not ignored).
    pulumi.Config reads a key by name but cannot list them, so the names come from where the SDK keeps them: the
    PULUMI_CONFIG environment variable the language host sets (public) and the SDK's config map, which the host's
    program runner, the Automation API and the mock engine fill (pulumi.runtime.config.CONFIG, not public API;
    tests/infra/test_sdk.py fails if the pinned SDK drops it)."""
    import pulumi

    names = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    return [key.partition(":")[2] for key in names if key.partition(":")[0] == project]


def from_config(project: str, stack: str, region: str | None, raw: dict[str, object]) -> Settings:
    """Build and validate settings from the project's config values (strings, as the CLI passes them, or values)."""
    problems: list[Problem] = []
    if not region:
        problems.append(Problem("aws:region", MISSING, "no region for the AWS provider",
                                "a region such as eu-west-1 (pulumi config set aws:region eu-west-1)"))
    elif not REGION.fullmatch(region):
        problems.append(Problem("aws:region", region, "not an AWS region name", "a region such as eu-west-1"))

    tier = _text(raw.get("tier", stack if stack in tiers.TIERS else MISSING))
    if tier not in tiers.TIERS:
        problems.append(Problem(f"{project}:tier", tier, "no tier defaults to start from",
                                ", ".join(tiers.TIERS) + " (defaults to the stack name when it is one of them)"))
        raise SettingsError(stack, problems)

    renamed = {old: new for old, new in RENAMED.items() if old in raw}
    for old, new in renamed.items():
        problems.append(Problem(f"{project}:{old}", decode(raw[old]), f"renamed to {new}",
                                f"the same keys under {project}:{new}"))
    defaults = {**tiers.defaults(tier), "tier": tier}
    values = tiers.merge(defaults, {k: decode(v) for k, v in raw.items() if k not in renamed})
    parsed = _parse(Settings, values, defaults, project + ":", problems)
    settings = Settings(project=project, stack=stack, region=region or "", **parsed)
    # Cross checks run on the valid values, a bad value replaced by its tier default, so that every problem is
    # listed at once; a key already reported is not reported twice.
    reported = {p.key for p in problems}
    problems += [p for p in cross_checks(settings) if p.key not in reported]
    if problems:
        raise SettingsError(stack, problems)
    return settings


def _text(value):
    return value.strip('"') if isinstance(value, str) else value


def decode(value):
    """Top-level config values arrive as strings; objects, lists, numbers and booleans as their JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _parse(cls, values: dict, fallback: dict, prefix: str, problems: list[Problem]) -> dict:
    """Type-check and check each field of a settings class; a wrong value is reported and its fallback used."""
    known = {camel(f.name): f for f in config_fields(cls)}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(Problem(prefix + key, value, "unknown key" + hint, "one of " + ", ".join(sorted(known))))
    hints = typing.get_type_hints(cls)
    good = {}
    for key, f in known.items():
        value, kind = values.get(key, MISSING), hints[f.name]
        if is_dataclass(kind):
            if not isinstance(value, dict):
                problems.append(Problem(prefix + key, value, "must be an object", "the keys of " + key))
                value = fallback[key]
            good[f.name] = kind(**_parse(kind, value, fallback[key], f"{prefix}{key}.", problems))
            continue
        if not _is_type(value, kind):
            problems.append(Problem(prefix + key, value, "wrong type", _type_name(kind)))
            value = fallback[key]
        elif f.metadata.get("check") and (found := f.metadata["check"](value)):
            problems.append(Problem(prefix + key, value, *found))
            value = fallback[key]
        good[f.name] = value
    return good


def _is_type(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if typing.get_origin(kind) is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if typing.get_origin(kind) is list:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    raise TypeError(f"unsupported settings type {kind}")


def _type_name(kind) -> str:
    if typing.get_origin(kind) is list:
        return "a list of strings"
    return {bool: "true or false", int: "a whole number", str: 'a string (quote numbers, e.g. "15")'}.get(
        kind, "a map of strings to strings")
