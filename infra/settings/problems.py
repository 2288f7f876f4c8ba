"""What invalid settings become: one Problem per key, all of them raised together as one SettingsError."""

from __future__ import annotations

import json
from dataclasses import dataclass

MISSING = object()  # a key that is not set


@dataclass(frozen=True)
class Problem:
    key: str
    value: object
    why: str
    allowed: str

    def __str__(self) -> str:
        shown = json.dumps(self.value) if self.value is not MISSING else "(not set)"
        return f"{self.key} = {shown}: {self.why}. Allowed: {self.allowed}."


class SettingsError(Exception):
    """Invalid stack configuration: every problem, listed."""

    def __init__(self, stack: str, problems: list[Problem]):
        self.stack = stack
        self.problems = problems
        lines = [f"Invalid configuration for stack '{stack}' ({len(problems)} problem"
                 f"{'s' if len(problems) != 1 else ''}):"]
        lines += [f"  - {p}" for p in problems]
        lines.append("Fix these in Pulumi.<stack>.yaml (or with `pulumi config set --path`); "
                     "the configuration reference is in README.md.")
        super().__init__("\n".join(lines))
