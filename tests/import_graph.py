"""The import graph of the project's own packages, read from the source with `ast` (imports inside functions
included: one there closes a circle too). Shared by the tests that keep the project free of import circles."""

from __future__ import annotations

import ast
import graphlib
import importlib.util
from pathlib import Path


def modules(root: Path, package: str) -> dict[str, Path]:
    """Module name -> file, for every module of `package` under `root` (the folder on sys.path)."""
    found = {}
    for path in sorted((root / package.replace(".", "/")).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(known: dict[str, Path], name: str) -> set[str]:
    """The modules among `known` that module `name` imports."""
    path = known[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names)
    # Importing a.b.c runs a/__init__ and a/b/__init__ first, unless the importer is inside them already.
    inside = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    parents = {".".join(t.split(".")[:i]) for t in found for i in range(1, t.count(".") + 1)} - inside
    return {target for target in found | parents if target in known} - {name}


def circle(known: dict[str, Path]) -> list[str] | None:
    """An import circle among `known` (as a path of module names), or None."""
    try:
        graphlib.TopologicalSorter({name: imports(known, name) for name in known}).prepare()
    except graphlib.CycleError as err:
        return err.args[1]
    return None
