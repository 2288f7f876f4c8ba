"""Facts about the built image (user, no compilers or caches, consistent packages, size), what its build context
holds, and that it was built from the same inputs `pulumi up` builds from."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import pytest

from infra.components.image import context_files
from infra.offline import harness
from tests.container.conftest import BUILT_FROM
from tests.images import BuildInputs, docker

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "docs" / "benchmarks.md"


def run_in(image: str, *command: str) -> str:
    return docker("run", "--rm", "--network", "none", "--entrypoint", command[0], image, *command[1:]).stdout


def test_runs_as_a_non_root_user(app_image):
    assert json.loads(docker("image", "inspect", app_image).stdout)[0]["Config"]["User"] == "10001:10001"
    assert run_in(app_image, "id", "-u").strip() == "10001"


def test_no_compilers_and_no_package_caches(app_image):
    found = run_in(app_image, "python", "-c", """
import glob, shutil
print([tool for tool in ("gcc", "cc", "c++", "g++", "clang", "make", "ld", "as") if shutil.which(tool)])
print([path for pattern in ("/var/lib/apt/lists/*_Packages", "/var/cache/apt/archives/*.deb", "/var/cache/apt/*.bin",
                            "/root/.cache/pip", "/tmp/*", "/opt/venv/**/pip-*.dist-info/RECORD.cache")
       for path in glob.glob(pattern, recursive=True)])
""").splitlines()
    assert found == ["[]", "[]"], found


def test_pip_check_finds_every_requirement_consistent(app_image):
    assert run_in(app_image, "pip", "check").strip() == "No broken requirements found."


def test_the_postgresql_client_is_the_engines_major_version(app_image, stacks):
    primary = [r for r in stacks["prod"].of_type("aws:rds/instance:Instance") if not r.inputs.get("replicateSourceDb")]
    engine = primary[0].inputs["engineVersion"]
    dump = run_in(app_image, "pg_dump", "--version")
    assert re.fullmatch(r"pg_dump \(PostgreSQL\) (\d+)\.\d+.*\n", dump).group(1) == engine.split(".")[0]


def test_the_size_is_recorded_in_the_benchmarks(app_image, base_image):
    """docs/benchmarks.md records the image's size and the base it was built from; a change that grows the image by
    more than 10 % fails here until the record is updated (with the reason)."""
    size_mb = json.loads(docker("image", "inspect", app_image).stdout)[0]["Size"] / 1e6
    recorded = re.search(r"\| application image, on the Debian base \(tests\) \| (\d+) MB \|", BENCHMARKS.read_text(),
                         re.M)
    assert recorded, "docs/benchmarks.md has no row for the image's size"
    assert size_mb <= int(recorded.group(1)) * 1.10, f"the image is {size_mb:.0f} MB, recorded {recorded.group(1)} MB"


@pytest.fixture
def planted_context(tmp_path):
    """app/ with what must never reach an image planted in it: tests, a virtualenv, local databases, caches, an
    .env file, compiled files."""
    context = tmp_path / "app"
    shutil.copytree(ROOT / "app", context, ignore=shutil.ignore_patterns("__pycache__"))
    planted = ["tests/test_app.py", ".venv/bin/python", "venv/lib/site.py", "local.sqlite3", "webapp/notes.db",
               "instance/app.sqlite", ".env", ".env.local", "webapp/__pycache__/x.cpython-311.pyc", ".coverage",
               ".pytest_cache/v/cache/lastfailed", "webapp/.hypothesis/examples/x", "webapp/.ruff_cache/x"]
    for relative in planted:
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        (context / relative).write_text("must not be in the image\n")
    return context, planted


def test_the_build_context_keeps_tests_venvs_databases_and_secrets_out(planted_context, base_image, tmp_path):
    context, planted = planted_context
    probe = tmp_path / "probe.Dockerfile"
    probe.write_text(f"FROM {base_image}\nCOPY . /context\n")
    tag = f"flask-aws-test-context:{uuid.uuid4().hex[:12]}"
    docker("build", "--network", "none", "--file", str(probe), "--tag", tag, str(context))
    try:
        listed = run_in(tag, "find", "/context", "-type", "f").split()
    finally:
        docker("rmi", "--force", tag, check=False)
    seen = sorted(path.removeprefix("/context/") for path in listed)
    assert not set(planted) & set(seen), set(planted) & set(seen)
    # The content tag hashes exactly what docker was given: same files, same rules.
    assert seen == context_files(context)


def test_built_from_the_inputs_pulumi_up_builds_from(stacks, build_inputs, app_image):
    """Every stack builds the same context and Dockerfile with no build arguments, only its platform differs; the
    tests build the one whose platform this machine runs, changing only the base and the bundle's source."""
    for stack, run in stacks.items():
        inputs = BuildInputs.of(run.one("docker:index/image:Image").inputs)
        assert (inputs.context, inputs.dockerfile, inputs.args) == ("app", "app/Dockerfile", {}), stack
        assert inputs.platform == harness.settings_of(run).image.platform, stack
    assert build_inputs == BuildInputs.of(stacks[BUILT_FROM].one("docker:index/image:Image").inputs)
    architecture = json.loads(docker("image", "inspect", app_image).stdout)[0]["Architecture"]
    assert build_inputs.platform == f"linux/{architecture}"
