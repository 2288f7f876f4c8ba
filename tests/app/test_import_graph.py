"""webapp's modules import each other without a circle, and extensions.py imports nothing from the project
(cookiecutter-flask style): a circle makes import order matter and pushes imports into functions to hide it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import import_graph

APP = Path(__file__).resolve().parents[2] / "app"
MODULES = import_graph.modules(APP, "webapp")


def imports(name: str) -> set[str]:
    return import_graph.imports(MODULES, name)


def test_the_parser_sees_top_level_and_function_level_imports():
    """Else an empty graph would pass the checks below."""
    assert {"webapp.database", "webapp.models"} <= imports("webapp.api.notes")
    assert "webapp.backups.cli" in imports("webapp")  # imported inside create_app


def test_extensions_imports_nothing_from_the_project():
    assert imports("webapp.extensions") == set()


def test_webapp_modules_import_without_a_circle():
    found = import_graph.circle(MODULES)
    if found:
        pytest.fail("import circle: " + " -> ".join(found))


ALONE = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "webapp" or m.startswith("webapp.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as err:
        print(f"{name}: {type(err).__name__}: {err}")
"""


def test_each_module_imports_alone():
    """In one interpreter (about 1 s instead of half a second per module): webapp's modules are forgotten before
    each import, the libraries stay loaded."""
    done = subprocess.run([sys.executable, "-c", ALONE, *MODULES], cwd=APP, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(APP)})
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
