"""The harness itself: it must be able to fail, and run the program the way the Pulumi host does."""

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from infra.offline import harness

ROOT = Path(__file__).resolve().parents[2]


def test_a_failing_assertion_inside_an_output_fails_the_run():
    def program():
        pulumi.Output.from_input(41).apply(lambda value: _check(value == 42))

    with pytest.raises(AssertionError, match="inside apply"):
        harness.run(program)
    assert gc.isenabled()  # the collector, off during the run, is back on after a failed one


def test_a_failing_assertion_inside_an_output_fails_a_pulumi_runtime_test():
    # The trap (DESIGN.md): without @pulumi.runtime.test, an Output returned by a test is never awaited and its
    # assertion never runs. With it, the assertion runs and fails.
    @pulumi.runtime.test
    def decorated():
        return pulumi.Output.from_input(41).apply(lambda value: _check(value == 42))

    harness.run(lambda: None)  # mocks in place
    with pytest.raises(AssertionError, match="inside apply"):
        decorated()


def _check(ok: bool):
    assert ok, "inside apply"


def test_unknown_invokes_fail_loudly():
    import pulumi_aws as aws

    with pytest.raises(Exception, match="no answer for invoke"):
        harness.run(lambda: aws.ec2.get_ami(most_recent=True, owners=["amazon"]))


def test_the_program_runs_as_the_pulumi_host_runs_it_from_another_directory(tmp_path):
    # The host: runpy.run_path on infra/ with infra/ first on sys.path, the repository root not on it, `infra` not
    # imported yet, the working directory elsewhere.
    script = f"""
import os, runpy, sys
from infra.offline import harness
root = {str(ROOT)!r}
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != root]
for name in [m for m in sys.modules if m == "infra" or m.startswith("infra.")]:
    del sys.modules[name]
config, secret_keys = harness.stack_config("dev", harness.Path(root))
run = harness.run(lambda: runpy.run_path(os.path.join(root, "infra"), run_name="__main__"), project="flask-aws",
                  stack="dev", config=config, secret_keys=secret_keys)
print(len(run.resources), run.outputs["vpcId"], run.one("docker:index/image:Image").inputs["build"]["context"])
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    count, vpc, context = done.stdout.split()
    assert int(count) > 50 and vpc.startswith("vpc-")
    # docker gets the build context relative to the program's working directory, wherever that is
    assert (tmp_path / context).resolve() == ROOT / "app"


def test_plan_prints_json_with_the_prod_counts():
    done = subprocess.run([sys.executable, "-m", "infra.plan", "--stack", "prod", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["stack"] == "prod"
    types = [r["type"] for r in plan["resources"]]
    assert types.count("aws:ec2/subnet:Subnet") == 9
    assert types.count("aws:ec2/natGateway:NatGateway") == 3
    assert types.count("aws:rds/instance:Instance") == 3
    assert all(set(r) == {"type", "name", "parent", "inputs"} for r in plan["resources"])
    assert {r["parent"] for r in plan["resources"]} >= {None, "network", "database", "network-vpc"}
    assert "[secret]" in done.stdout
    assert plan["outputs"]["databasePort"] == 5432


def test_plan_tree_shows_components_and_counts():
    done = subprocess.run([sys.executable, "-m", "infra.plan", "--stack", "dev"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "- network (flask-aws:network:Network)" in done.stdout
    assert "  - network-vpc (aws:ec2/vpc:Vpc)  cidrBlock=10.10.0.0/16" in done.stdout
    assert "Resources by type:" in done.stdout
    assert "! load-balancer-http: plain HTTP is served" in done.stdout  # dev's allowHttp is flagged
    prod = subprocess.run([sys.executable, "-m", "infra.plan", "--stack", "prod"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert "Warnings:" not in prod.stdout
    assert "- service (flask-aws:service:ContainerService)" in prod.stdout


def test_plan_of_invalid_config_exits_2_listing_every_problem_without_a_traceback(tmp_path):
    for name in ("Pulumi.yaml",):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "infra").symlink_to(ROOT / "infra")
    (tmp_path / "Pulumi.broken.yaml").write_text("""
config:
  aws:region: eu-west-1
  flask-aws:tier: prod
  flask-aws:database:
    replicas: 9
    instanceClass: r6g.large
  flask-aws:cache:
    nodes: 1
  flask-aws:netwrk:
    cidr: 10.0.0.0/16
""")
    done = subprocess.run([sys.executable, "-m", "infra.plan", "--stack", "broken", "--project-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for key in ("database.replicas", "database.instanceClass", "cache.nodes", "netwrk", "snapshots.copyRegion"):
        assert f"flask-aws:{key}" in done.stderr, key
    assert done.stdout == ""


def test_plan_of_an_unknown_stack_exits_2():
    done = subprocess.run([sys.executable, "-m", "infra.plan", "--stack", "nope"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "no stack file Pulumi.nope.yaml" in done.stderr


def test_the_plan_reads_the_same_every_run(stacks):
    # Registration order varies with when inputs resolve; the harness sorts, so plans can be diffed.
    run = stacks["prod"]
    assert [(r.name, r.type) for r in run.resources] == sorted((r.name, r.type) for r in run.resources)
    assert run.as_json() == harness.run_stack("prod").as_json()


def test_the_command_without_the_collector_prints_what_a_run_under_it_prints(capsys):
    """`python -m infra.plan` turns the cyclic collector off and freezes it at exit (speed): same bytes out."""
    import gc

    from infra.offline import plan

    done = subprocess.run([sys.executable, "-m", "infra.plan", "--stack", "prod"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert gc.isenabled()
    code = plan.main(["--stack", "prod"])
    assert (code, capsys.readouterr().out) == (done.returncode, done.stdout) and done.stdout
