"""Reading what the engine passes a policy: resources' props (inputs, camelCase) and their containers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from pulumi_policy import PolicyResource

Report = Callable[[str, str | None], None]


def containers(props) -> list[dict]:
    raw = props.get("containerDefinitions") or "[]"
    return json.loads(raw) if isinstance(raw, str) else list(raw)


def environment(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("environment", [])}


def serves_http(container: dict) -> bool:
    """The application server's container (the backup jobs run the same image with a command and no port)."""
    return bool(container.get("portMappings"))


def of_type(resources: Iterable[PolicyResource], resource_type: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == resource_type]


def as_list(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]
