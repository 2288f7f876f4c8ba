"""The GitHub Actions workflows: valid against GitHub's workflow schema (check-jsonschema's vendored copy), clean
under actionlint (with ShellCheck on the run: scripts), and doing what docs/delivery.md says they do."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def test_the_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"test.yml", "preview.yml", "deploy.yml", "deploy-stack.yml"}


def test_every_workflow_matches_githubs_schema(tmp_path):
    checker = str(BIN / "check-jsonschema")
    done = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    assert subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", str(broken)],
                          capture_output=True).returncode != 0


def test_actionlint_and_shellcheck_find_nothing(tmp_path):
    assert shutil.which("shellcheck"), "shellcheck is missing: bash deploy/install-system-packages.sh installs it"
    done = subprocess.run([str(BIN / "actionlint"), *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                      "      - run: echo ${{ matrix.nope }} $UNQUOTED\n")
    found = subprocess.run([str(BIN / "actionlint"), str(broken)], capture_output=True, text=True).stdout
    assert "matrix.nope" in found or "property \"nope\"" in found


def test_no_long_lived_aws_keys_and_every_action_on_a_release():
    for path in WORKFLOWS:
        text = path.read_text()
        assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path.name
        for job in load(path.name)["jobs"].values():
            for step in steps(job):
                if "uses" in step:
                    action, _, version = step["uses"].partition("@")
                    assert version.startswith("v") or action.startswith("./"), step["uses"]


def test_tests_run_lint_the_offline_suite_and_the_integration_suite():
    workflow = load("test.yml")
    assert set(triggers(workflow)) == {"push", "pull_request"}
    commands = " ".join(s.get("run", "") for job in workflow["jobs"].values() for s in steps(job))
    assert "make lint" in commands and "pytest tests/infra tests/ci tests/test_layout.py" in commands
    assert "pytest tests/app tests/ops tests/deploy tests/e2e" in commands
    assert "pytest tests/container" in commands and "bash deploy/docker-engine.sh start" in commands
    # every folder of tests and every test module at the top runs in some job
    tests = Path(__file__).resolve().parents[1]
    suites = {f"tests/{p.name}" for p in tests.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    suites |= {f"tests/{p.name}" for p in tests.glob("test_*.py")}
    run = {path for found in re.findall(r"pytest ((?:tests/\S+ ?)+)", commands) for path in found.split()}
    assert suites <= run, sorted(suites - run)
    assert "install-system-packages.sh" in commands  # PostgreSQL, Redis, nginx for the integration suite
    assert workflow["jobs"]["integration"]["container"].startswith("python:3.11")


def test_preview_runs_on_every_pull_request_for_every_stack_with_the_policy_pack():
    workflow = load("preview.yml")
    assert list(triggers(workflow)) == ["pull_request"]
    assert workflow["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    job = workflow["jobs"]["preview"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == STACKS == ["dev", "prod", "staging"]
    aws = next(s for s in steps(job) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials"))
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"  # OIDC, no keys
    pulumi = next(s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions") and "with" in s)
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["comment-on-pr"] is True
    # against the image that is deployed, not a rebuild
    before = " ".join(s.get("run", "") for s in steps(job)[:steps(job).index(pulumi)])
    assert "pulumi config set --path image.uri" in before and "imageUri" in before
    assert pulumi["with"]["policyPacks"] == "infra/policy"
    assert pulumi["with"]["policyPackConfigs"] == "infra/policy/${{ matrix.stack }}.json"
    assert pulumi["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"  # empty: Pulumi Cloud
    for stack in STACKS:
        assert (ROOT / "infra" / "policy" / f"{stack}.json").exists()


def test_deploy_builds_once_then_dev_staging_prod_each_verified():
    workflow = load("deploy.yml")
    assert triggers(workflow)["push"] == {"branches": ["main"]}
    jobs = workflow["jobs"]
    builds = [s for s in steps(jobs["image"]) if "docker buildx build" in s.get("run", "")]
    assert len(builds) == 1 and "--platform linux/amd64,linux/arm64" in builds[0]["run"]
    assert jobs["dev"]["needs"] == "image"
    assert jobs["staging"]["needs"] == ["image", "dev"] and jobs["prod"]["needs"] == ["image", "staging"]
    for stack in ("dev", "staging", "prod"):
        assert jobs[stack]["uses"] == "./.github/workflows/deploy-stack.yml"
        assert jobs[stack]["with"] == {"stack": stack, "digest": "${{ needs.image.outputs.digest }}"}
    stack_job = load("deploy-stack.yml")["jobs"]["deploy"]
    assert stack_job["environment"] == "${{ inputs.stack }}"  # prod's environment carries the manual approval
    runs = [s.get("run", "") for s in steps(stack_job)]
    deploy = next(r for r in runs if "pulumi up" in r)
    assert "--policy-pack infra/policy" in deploy and 'infra/policy/${STACK}.json' in deploy
    assert 'image.uri "$IMAGE_URI"' in deploy  # by digest
    verify = next(r for r in runs if "ops.verify" in r)
    assert runs.index(deploy) < runs.index(verify) and "--wait" in verify
    push = next(r for r in runs if "skopeo copy" in r)
    assert "describe-images" in push  # immutable tags: a re-run does not push again
    assert stack_job["concurrency"]["group"] == "deploy-${{ inputs.stack }}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_has_a_deploy_environment_and_policy_config(stack):
    assert (ROOT / "infra" / "policy" / f"{stack}.json").exists()
