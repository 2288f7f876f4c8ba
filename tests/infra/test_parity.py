"""Environment parity: every topology difference between two stacks is explained by the settings that shape the
topology, and it is deliberate only where the tiers make it so; the plan's --compare says so."""

import pytest

from infra import tiers
from infra.offline import harness, parity, plan
from tests.infra.conftest import settings_for


@pytest.fixture(scope="module")
def staging_vs_prod(stacks):
    return parity.explain(stacks["staging"], stacks["prod"])


def test_staging_differs_from_prod_only_by_tier_differences(staging_vs_prod):
    assert staging_vs_prod and all(row.deliberate for row in staging_vs_prod), [str(r) for r in staging_vs_prod]
    causes = {key for row in staging_vs_prod for cause in row.causes for key in cause.keys}
    assert causes == {"network.natGateways", "database.replicas", "snapshots.copyRegion"}
    rows = {row.type: row for row in staging_vs_prod}
    # counts come from the program itself: one NAT gateway against one per AZ, one replica against two
    assert rows["aws:ec2/natGateway:NatGateway"].counts == (1, 3)
    assert rows["aws:rds/instance:Instance"].counts == (2, 3)
    assert [c.keys for c in rows["aws:cloudwatch/logGroup:LogGroup"].causes] == [("database.replicas",)]


def test_sizing_differences_are_reported(stacks):
    found = {(name, prop): (a, b) for name, prop, a, b in parity.sizing(stacks["staging"], stacks["prod"])}
    assert found[("database-primary", "instanceClass")] == ("db.t4g.medium", "db.r6g.large")
    assert found[("cache-redis", "numCacheClusters")] == (2, 3)
    assert found[("service-scaling", "maxCapacity")] == (4, 20)


def test_the_compare_prints_each_rows_reason(cached_runs, staging_vs_prod, monkeypatch, capsys):
    monkeypatch.setattr(parity, "explain", lambda a, b: staging_vs_prod)  # computed once, by the fixture
    assert plan.main(["--compare", "staging", "prod"]) == 0
    out = capsys.readouterr().out
    assert "aws:ec2/natGateway:NatGateway: 1 vs 3  (network.natGateways single vs perAz: a NAT gateway per AZ" in out
    assert "aws:kms/key:Key: 4 vs 5  (snapshots.copyRegion (empty) vs eu-central-1: prod keeps a copy of its " \
           "snapshots in a second region (prod's requirement))" in out
    assert parity.UNLISTED not in out


def test_the_reasons_are_right_for_any_pair(stacks):
    """dev against prod: every row has its own reason, none of them staging's."""
    rows = parity.explain(stacks["dev"], stacks["prod"])
    assert rows and all(row.deliberate for row in rows), [str(r) for r in rows if not r.deliberate]
    text = "\n".join(map(str, rows))
    assert "staging" not in text
    assert "aws:sns/topicSubscription:TopicSubscription: 0 vs 1  (monitoring.alarmEmails (empty) vs " \
           '["ops@example.com"]: prod alarms must reach someone' in text
    assert "aws:ec2/subnet:Subnet: 6 vs 9  (network.azCount 2 vs 3: " in text


def test_a_stack_files_choice_is_not_a_tier_difference(stacks):
    """A staging with no replica at all is not the tiers' 'one replica against two'."""
    staging = harness.run_stack("staging", overrides={"database": {"replicas": 0}})
    assert "aws:rds/instance:Instance" in parity.unlisted(staging, stacks["prod"])
    report = parity.report(staging, stacks["prod"])
    assert "aws:rds/instance:Instance: 1 vs 3  (database.replicas 0 vs 2: NOT A LISTED EXCEPTION (a stack " \
           "file's choice, not a tier's))" in report


def test_a_difference_no_setting_explains_is_caught(stacks, monkeypatch):
    """A shaping setting the schema forgot to mark leaves its resources unexplained."""
    keys = [(key, shape) for key, shape in parity.shaping_keys() if key != "network.natGateways"]
    monkeypatch.setattr(parity, "shaping_keys", lambda: keys)
    rows = {row.type: row for row in parity.explain(stacks["staging"], stacks["prod"])}
    assert rows["aws:ec2/natGateway:NatGateway"].unexplained and not rows["aws:ec2/natGateway:NatGateway"].deliberate
    assert "NOT A LISTED EXCEPTION: no setting explains it" in str(rows["aws:ec2/natGateway:NatGateway"])
    assert rows["aws:rds/instance:Instance"].deliberate
    # the other way round (moved onto staging, the laxer tier, and turned back): the same verdicts
    turned = {row.type: row for row in parity.explain(stacks["prod"], stacks["staging"])}
    assert turned["aws:ec2/natGateway:NatGateway"].counts == (3, 1)
    assert turned["aws:ec2/natGateway:NatGateway"].unexplained and turned["aws:rds/instance:Instance"].deliberate
    assert [c.values for c in turned["aws:rds/instance:Instance"].causes] == [((2, 1),)]


def test_a_requirement_is_the_reason_only_where_the_other_stack_breaks_it():
    """dev mailing two people against prod mailing one is dev's choice; dev mailing nobody is prod's requirement."""
    prod = settings_for("prod")
    assert parity._why(settings_for("dev", monitoring={"alarmEmails": ["a@example.com", "b@example.com"]}), prod,
                       "monitoring.alarmEmails") is None
    assert parity._why(settings_for("dev"), prod, "monitoring.alarmEmails") == \
        "prod alarms must reach someone (prod's requirement)"
    # a dev with a certificate of its own meets prod's HTTPS requirement: its keys differ by choice
    certificate = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-000000000000"
    dev_https = settings_for("dev", loadBalancer={"allowHttp": False, "certificateArn": certificate,
                                                  "domain": "dev.example.com"})
    assert parity._why(dev_https, prod, "loadBalancer.certificateArn") is None


def test_every_tier_difference_that_shapes_the_topology_says_why():
    def default(tier, key):
        value = tiers.defaults(tier)
        for part in key.split("."):
            value = value[part]
        return value

    shapes = dict(parity.shaping_keys())
    differing = {key for key, shape in shapes.items() if len({repr(shape(default(t, key))) for t in tiers.TIERS}) > 1}
    assert differing == set(tiers.WHY_TIERS_DIFFER), "say why in infra/tiers/defaults.py, or drop a stale reason"
