"""Environment parity: staging has prod's topology but for the listed exceptions, and the plan's --compare says
so."""

from infra import parity, plan


def test_staging_differs_from_prod_only_by_listed_exceptions(stacks):
    staging, prod = stacks["staging"], stacks["prod"]
    assert parity.unlisted(staging, prod) == []
    # and every listed exception is real (a stale entry would hide a future difference)
    assert set(parity.topology(staging, prod)) == set(parity.STAGING_EXCEPTIONS)


def test_sizing_differences_are_reported(stacks):
    found = {(name, prop): (a, b) for name, prop, a, b in parity.sizing(stacks["staging"], stacks["prod"])}
    assert found[("database-primary", "instanceClass")] == ("db.t4g.medium", "db.r6g.large")
    assert found[("cache-redis", "numCacheClusters")] == (2, 3)
    assert found[("service-scaling", "maxCapacity")] == (4, 20)


def test_a_new_topology_difference_fails_the_compare(cached_runs, capsys):
    assert plan.main(["--compare", "staging", "prod"]) == 0
    out = capsys.readouterr().out
    assert "aws:ec2/natGateway:NatGateway: 1 vs 3  (one NAT gateway" in out and "NOT A LISTED" not in out
    assert plan.main(["--compare", "dev", "prod"]) == 1  # dev is not held to prod's topology
    assert "NOT A LISTED EXCEPTION" in capsys.readouterr().out


def test_an_exception_is_held_to_its_counts(stacks, monkeypatch):
    """A staging with no replica at all is not the listed 'one replica' exception."""
    monkeypatch.setitem(parity.STAGING_EXCEPTIONS, "aws:rds/instance:Instance", (1, 3, "pretend"))
    assert parity.unlisted(stacks["staging"], stacks["prod"]) == ["aws:rds/instance:Instance"]
    assert "NOT A LISTED EXCEPTION: listed as 1 vs 3" in parity.report(stacks["staging"], stacks["prod"])
