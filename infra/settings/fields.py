"""The building blocks of the settings schema: a field with its documentation, check and shape, and the walk
from a dotted camelCase key to its value."""

from __future__ import annotations

from dataclasses import field, fields


def same(value):
    """The shape of a setting whose every value is its own shape (a count, a mode, a switch)."""
    return value


def setting(doc: str, check=None, shape=None):
    """A settings field: its one-line documentation, an optional check of its value alone, and an optional shape."""
    return field(metadata={"doc": doc, "check": check, "shape": shape})


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def config_fields(cls) -> list:
    """The fields a stack file sets (not project, stack and region, which come from the context)."""
    return [f for f in fields(cls) if not f.metadata.get("context")]


def value_at(settings, key: str):
    """The value of a dotted camelCase key, e.g. value_at(s, "database.backupRetentionDays")."""
    value = settings
    for part in key.split("."):
        value = getattr(value, next(f.name for f in fields(value) if camel(f.name) == part))
    return value
