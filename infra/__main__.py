"""The Pulumi program: settings -> stack -> exports, nothing else.

The Pulumi Python host runs this file with runpy on the infra/ folder (infra/ first on sys.path, the working
directory anywhere), so the repository root is put on sys.path to import the `infra` package the same way
`python -m infra.plan` and the tests do.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pulumi  # noqa: E402

from infra import settings, stack  # noqa: E402

try:
    stack_settings = settings.load()
except settings.SettingsError as err:
    # RunError: Pulumi prints the message alone, without a traceback; nothing has been declared yet.
    raise pulumi.RunError(str(err)) from None

for name, value in stack.build(stack_settings).items():
    pulumi.export(name, value)
