"""The shape of the repository: the docs' map of where things live matches the tree, no module is too long to read
in one sitting, and no package imports itself in a circle."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import import_graph

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 350


def where_things_live() -> set[str]:
    """The paths in docs/ARCHITECTURE.md's "Where things live" table."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text[text.index("## Where things live"):]
    section = section[:section.index("\n## ", 1)]
    return set(re.findall(r"^\| `([^`]+)`", section, re.M))


def readme_layout() -> str:
    """The fenced block under the README's "Repository layout"."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Repository layout"):]
    return section.split("```")[1]


def test_every_component_file_and_folder_is_on_the_map():
    listed = where_things_live()
    components = {f"infra/components/{p.name}" for p in (ROOT / "infra" / "components").glob("*.py")}
    assert components <= listed, sorted(components - listed)
    folders = {f"infra/{p.name}/" for p in (ROOT / "infra").iterdir() if p.is_dir() and p.name != "__pycache__"}
    folders |= {f"{name}/" for name in ("app", "deploy", "ops", "bench", "tests", "docs")}
    assert folders <= listed, sorted(folders - listed)
    modules = {f"infra/{p.name}" for p in (ROOT / "infra").glob("*.py") if p.name != "__init__.py"}
    assert modules <= listed, sorted(modules - listed)


def test_everything_on_the_map_exists():
    for path in where_things_live():
        for part in path.split(", "):
            assert (ROOT / part.strip("`")).exists(), part


def test_the_readme_layout_names_every_infra_folder_and_module():
    layout = readme_layout()
    for p in (ROOT / "infra").iterdir():
        if p.name in ("__pycache__", "__init__.py"):
            continue
        assert f"infra/{p.name}{'/' if p.is_dir() else ''}" in layout, p.name
    components = re.search(r"^infra/components/ +(.*?)\n(?=\S)", layout, re.M | re.S).group(1)
    named = set(re.findall(r"\b(\w+)(?:\.py)?\b", components))
    missing = {p.stem for p in (ROOT / "infra" / "components").glob("*.py") if p.name != "__init__.py"} - named
    assert not missing, missing


@pytest.mark.parametrize("folder", ["infra", "app"])
def test_no_module_is_too_long_to_read_in_one_sitting(folder):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / folder).rglob("*.py")
            if ".venv" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("package", ["infra", "ops", "deploy", "bench"])
def test_no_import_circle(package):
    known = import_graph.modules(ROOT, package)
    assert len(known) > 2
    assert import_graph.circle(known) is None


def test_the_program_and_the_plan_import_cleanly_alone():
    """Each in a fresh interpreter, nothing imported before it."""
    for module in ("infra.stack", "infra.offline.plan", "infra.policy.rules", "infra.offline.parity"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr


def test_a_circle_through_a_package_init_is_a_circle(tmp_path):
    """Importing pkg.inner runs pkg/__init__ first: pkg/__init__ -> other -> pkg.inner is a circle."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("import other\n")
    (tmp_path / "pkg" / "inner.py").write_text("")
    (tmp_path / "other.py").write_text("from pkg import inner\n")
    known = {**import_graph.modules(tmp_path, "pkg"), "other": tmp_path / "other.py"}
    assert import_graph.circle(known)
    (tmp_path / "pkg" / "__init__.py").write_text("from pkg import inner\n")  # a package importing its own part
    assert import_graph.circle(known) is None
