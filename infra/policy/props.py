"""Reading what the engine passes a policy: resources' props (inputs, camelCase) and their containers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from pulumi_policy import PolicyResource

from infra import tiers

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


def required(args, key: str):
    """What the stack's tier requires of settings key `key`, from the rule's configuration (infra/policy/<tier>.json,
    written from infra/tiers/requirements.py): None where the tier does not require it; without a configuration,
    the strictest value any tier requires. The engine passes numbers through protobuf, so whole numbers come as
    floats: they are given back as ints."""
    config = args.get_config() or {}
    value = config[key] if key in config else tiers.strictest(key)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def policies_of(args, resource: PolicyResource, role_input: str) -> list[dict]:
    """The policy documents of the role a resource names in `role_input` (e.g. a task definition's taskRoleArn):
    found through the engine's property dependencies, so they are matched in a preview too, where ARNs are not yet
    known."""
    roles = resource.property_dependencies.get(role_input, [])
    documents = []
    for grant in of_type(args.resources, "aws:iam/rolePolicy:RolePolicy"):
        if any(role in grant.property_dependencies.get("role", []) for role in roles):
            document = grant.props.get("policy")
            documents.append(json.loads(document) if isinstance(document, str) else (document or {}))
    return documents
