"""Network component: subnet layout, egress modes, endpoints, flow logs, the default security group."""

import ipaddress
import json

import pulumi
import pytest

from infra.components.network import Network, subnet_cidrs
from infra.offline import harness
from tests.infra.conftest import CONTEXT, LOGS_KEY_ARN, settings_for


def build(**network) -> harness.Run:
    s = settings_for("staging", network=network)
    def program():
        network = Network("network", s.network, context=CONTEXT, name_prefix="flask-aws-test",
                          logs_key_arn=LOGS_KEY_ARN, log_retention_days=30)
        network.allow_buckets([BUCKET_ARN])
    return harness.run(program)


BUCKET_ARN = "arn:aws:s3:::flask-aws-test-backups"


def endpoint_statements(run, service: str) -> list[dict]:
    (endpoint,) = [e for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                   if e.inputs["serviceName"].endswith("." + service)]
    document = endpoint.inputs.get("policy") or next(
        p.inputs["policy"] for p in run.of_type("aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy")
        if p.dependencies["vpcEndpointId"] == [endpoint.urn])
    return json.loads(document)["Statement"]


@pytest.mark.parametrize("cidr,prefix,azs", [("10.0.0.0/16", 20, 3), ("10.0.0.0/24", 28, 3), ("172.16.0.0/20", 24,
                                                                                                 2)])
def test_subnet_blocks_do_not_overlap_and_stay_inside_the_vpc(cidr, prefix, azs):
    blocks = subnet_cidrs(cidr, prefix, azs)
    flat = [ipaddress.ip_network(b) for tier in blocks.values() for b in tier]
    assert [len(blocks[t]) for t in ("public", "private", "isolated")] == [azs] * 3
    assert all(b.subnet_of(ipaddress.ip_network(cidr)) for b in flat)
    assert not any(a.overlaps(b) for i, a in enumerate(flat) for b in flat[i + 1:])


def test_subnets_per_tier_and_az_none_public_by_default():
    run = build()
    subnets = run.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 9
    assert {s.inputs["availabilityZone"] for s in subnets} == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert sorted(s.inputs["tags"]["Tier"] for s in subnets) == ["isolated"] * 3 + ["private"] * 3 + ["public"] * 3


@pytest.mark.parametrize("mode,nats,private_tables", [("none", 0, 1), ("single", 1, 1), ("perAz", 3, 3)])
def test_nat_modes(mode, nats, private_tables):
    run = build(natGateways=mode)
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == nats
    assert len(run.of_type("aws:ec2/eip:Eip")) == nats
    tables = [t for t in run.of_type("aws:ec2/routeTable:RouteTable") if "private" in t.name]
    assert len(tables) == private_tables
    nat_routes = [r for r in run.of_type("aws:ec2/route:Route") if r.inputs.get("natGatewayId")]
    assert len(nat_routes) == nats
    if mode == "perAz":  # each private table routes through a NAT gateway of its own
        assert len({r.inputs["natGatewayId"] for r in nat_routes}) == 3
    # Without NAT the backup jobs reach KMS through an endpoint of its own.
    endpoints = {e.inputs["serviceName"].rsplit(".", 1)[-1] for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                 if e.inputs["vpcEndpointType"] == "Interface"}
    assert ("kms" in endpoints) is (mode == "none")


def test_isolated_subnets_have_no_route_out():
    run = build()
    isolated = run.named("network-isolated")
    assert [c.type for c in run.children(isolated)] == ["aws:ec2/routeTableAssociation:RouteTableAssociation"] * 3
    public = run.named("network-public")
    routes = {c.inputs.get("destinationCidrBlock") or c.inputs["destinationIpv6CidrBlock"]: c
              for c in run.children(public) if c.type == "aws:ec2/route:Route"}
    assert set(routes) == {"0.0.0.0/0", "::/0"}
    assert all(r.inputs["gatewayId"].startswith("igw-") for r in routes.values())


def test_public_subnets_get_ipv6_blocks_from_the_vpc_for_a_dual_stack_load_balancer():
    run = build()
    vpc = run.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["assignGeneratedIpv6CidrBlock"] is True
    block = ipaddress.ip_network(vpc.outputs["ipv6CidrBlock"])
    by_tier = {}
    for subnet in run.of_type("aws:ec2/subnet:Subnet"):
        by_tier.setdefault(subnet.inputs["tags"]["Tier"], []).append(subnet.inputs.get("ipv6CidrBlock"))
    public = [ipaddress.ip_network(b) for b in by_tier["public"]]
    assert len(set(public)) == 3 and all(b.prefixlen == 64 and b.subnet_of(block) for b in public)
    assert by_tier["private"] == [None] * 3 and by_tier["isolated"] == [None] * 3


def test_default_security_group_is_stripped_of_rules():
    sg = build().one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert sg.inputs["ingress"] == [] and sg.inputs["egress"] == []


@pytest.mark.parametrize("enabled", [True, False])
def test_interface_endpoints_by_setting_and_s3_gateway_always(enabled):
    run = build(interfaceEndpoints=enabled)
    endpoints = {e.inputs["serviceName"].removeprefix("com.amazonaws.eu-west-1."): e
                 for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert endpoints["s3"].inputs["vpcEndpointType"] == "Gateway"
    assert len(endpoints["s3"].inputs["routeTableIds"]) == 1
    interface = {k for k, e in endpoints.items() if e.inputs["vpcEndpointType"] == "Interface"}
    assert interface == ({"ecr.api", "ecr.dkr", "logs", "secretsmanager"} if enabled else set())
    for name in interface:
        assert endpoints[name].inputs["privateDnsEnabled"] is True
        assert len(endpoints[name].inputs["subnetIds"]) == 3
    if enabled:
        rule = run.named("network-endpoints-https")
        assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["cidrIpv4"]) == (443, 443, "10.0.0.0/16")


def test_flow_log_goes_to_an_encrypted_log_group_with_retention_through_a_scoped_role():
    run = build()
    group = run.named("network-flow-logs", "aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["retentionInDays"] == 30 and group.inputs["kmsKeyId"] == LOGS_KEY_ARN
    flow = run.one("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["trafficType"] == "ALL" and flow.inputs["logDestinationType"] == "cloud-watch-logs"
    trust = json.loads(run.one("aws:iam/role:Role").inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    flow_logs = f"arn:aws:ec2:eu-west-1:{harness.ACCOUNT}:vpc-flow-log/*"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": harness.ACCOUNT},
                                  "ArnLike": {"aws:SourceArn": flow_logs}}
    statements = json.loads(run.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])["Statement"]
    assert statements[0]["Resource"][0] == group.outputs["arn"]
    assert [s["Action"] for s in statements if s["Resource"] == "*"] == ["logs:DescribeLogGroups"]


def test_app_security_group_has_no_ingress_of_its_own():
    run = build()
    assert run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") == [
        run.named("network-endpoints-https")]


def test_component_registers_its_outputs_and_parents_its_children():
    run = build()
    component = run.one("flask-aws:network:Network")
    assert set(component.registered_outputs) >= {"vpc_id", "public_subnet_ids", "private_subnet_ids",
                                                 "isolated_subnet_ids", "app_security_group_id"}
    assert all(r.parent for r in run.resources if r is not component)


def test_more_azs_than_the_region_has_is_a_clear_error():
    with pytest.raises(pulumi.RunError, match=r"network.azCount is 4 but eu-west-1 offers 3"):
        build(azCount=4)


def test_private_groups_send_https_out_and_nothing_else_of_their_own():
    """The app, jobs and rotation groups: 443 out (AWS's APIs through the endpoints or NAT, HTTPS); the data tier
    adds its own port to its own group for each of them (tests/infra/test_database.py, test_cache.py)."""
    run = build()
    for label in ("app", "jobs", "rotation"):
        group = run.named(f"network-{label}", "aws:ec2/securityGroup:SecurityGroup")
        assert "egress" not in group.inputs and "ingress" not in group.inputs  # the provider removes AWS's allow-all
        (rule,) = [r for r in run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
                   if r.dependencies["securityGroupId"] == [group.urn]]
        assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"],
                rule.inputs["cidrIpv4"]) == ("tcp", 443, 443, "0.0.0.0/0")


@pytest.mark.parametrize("service", ["ecr.api", "ecr.dkr", "logs", "secretsmanager"])
def test_interface_endpoints_admit_this_accounts_principals_on_its_own_resources(service):
    statements = endpoint_statements(build(), service)
    (own,) = [st for st in statements if st["Sid"] == "ThisAccountOnItsOwnResources"]
    assert own["Principal"] == {"AWS": "*"} and own["Action"] == f"{service.split('.')[0]}:*"
    assert own["Condition"] == {"StringEquals": {"aws:PrincipalAccount": harness.ACCOUNT,
                                                 "aws:ResourceAccount": harness.ACCOUNT}}
    # What names no resource: ECR's login, the rotation functions' random passwords; this account's principals only.
    wide = [st for st in statements if st["Sid"] == "ThisAccountWithoutAResource"]
    expected = {"ecr.api": ["ecr:GetAuthorizationToken"], "secretsmanager": ["secretsmanager:GetRandomPassword"]}
    assert [st["Action"] for st in wide] == ([expected[service]] if service in expected else [])
    assert all(st["Condition"] == {"StringEquals": {"aws:PrincipalAccount": harness.ACCOUNT}} for st in wide)


def test_the_s3_endpoint_reaches_the_stacks_buckets_and_ecrs_layers_only():
    statements = endpoint_statements(build(), "s3")
    by_sid = {st["Sid"]: st for st in statements}
    assert by_sid["EcrImageLayers"]["Resource"] == "arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*"
    assert by_sid["EcrImageLayers"]["Action"] == "s3:GetObject"
    assert by_sid["TheStacksBuckets"]["Resource"] == [BUCKET_ARN, f"{BUCKET_ARN}/*"]
    assert by_sid["TheStacksBuckets"]["Condition"] == {"StringEquals": {"aws:PrincipalAccount": harness.ACCOUNT}}
    # ECR's layers come through a URL ECR's own account presigned: a condition on the caller's account would refuse
    # every image pull. Reading that one bucket is all the statement allows.
    assert "Condition" not in by_sid["EcrImageLayers"]
