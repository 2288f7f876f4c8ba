"""The VPC: three subnet tiers per AZ, egress, flow logs and the endpoints private tasks need."""

from __future__ import annotations

import ipaddress
import json

import pulumi
import pulumi_aws as aws

from infra.catalog import ecr_layer_objects
from infra.components import AwsContext, assume_role_policy, policy, type_token
from infra.settings import NetworkSettings

TIERS = ("public", "private", "isolated")
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager")
# The actions that name no resource (so no account to compare), which the tasks and functions still need: logging in
# to ECR, and the rotation functions' random passwords.
ACCOUNT_WIDE_ACTIONS = {"ecr.api": ["ecr:GetAuthorizationToken"],
                        "secretsmanager": ["secretsmanager:GetRandomPassword"]}


def subnet_cidrs(cidr: str, prefix_length: int, az_count: int) -> dict[str, list[str]]:
    """Non-overlapping subnet blocks: the VPC cut into /prefix_length slots, public first, then private (app),
    then isolated (data), one slot per AZ each. Settings validation guarantees they fit."""
    slots = ipaddress.ip_network(cidr).subnets(new_prefix=prefix_length)
    blocks = [str(next(slots)) for _ in range(3 * az_count)]
    return {tier: blocks[i * az_count:(i + 1) * az_count] for i, tier in enumerate(TIERS)}


def interface_endpoint_policy(context: AwsContext, service: str) -> dict:
    """This account's principals, on this account's resources only: an endpoint is no way to reach another
    account's secrets, keys, logs or images, nor to use credentials from another account."""
    prefix = service.split(".")[0]
    statements = [{"Sid": "ThisAccountOnItsOwnResources", "Effect": "Allow", "Principal": {"AWS": "*"},
                   "Action": f"{prefix}:*", "Resource": "*",
                   "Condition": {"StringEquals": {"aws:PrincipalAccount": context.account_id,
                                                  "aws:ResourceAccount": context.account_id}}}]
    if service in ACCOUNT_WIDE_ACTIONS:
        statements.append({"Sid": "ThisAccountWithoutAResource", "Effect": "Allow", "Principal": {"AWS": "*"},
                           "Action": ACCOUNT_WIDE_ACTIONS[service], "Resource": "*",
                           "Condition": {"StringEquals": {"aws:PrincipalAccount": context.account_id}}})
    return policy(*statements)


def s3_endpoint_policy(context: AwsContext, bucket_arns: list[str]) -> dict:
    """The stack's buckets, for this account's principals, and reading ECR's layer bucket of the region (where
    image layers are downloaded from)."""
    account = {"StringEquals": {"aws:PrincipalAccount": context.account_id}}
    # No condition on the caller: the layers come through a URL ECR's own account signed. Reading layers is all it
    # allows.
    statements = [{"Sid": "EcrImageLayers", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
                   "Resource": ecr_layer_objects(context.partition, context.region)}]
    if bucket_arns:
        statements.append({"Sid": "TheStacksBuckets", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:*",
                           "Resource": [*bucket_arns, *(f"{arn}/*" for arn in bucket_arns)], "Condition": account})
    return policy(*statements)


class Network(pulumi.ComponentResource):
    """A VPC over N AZs. Public subnets hold the load balancer and NAT gateways; private subnets the application
    tasks; isolated subnets, with no route out of the VPC, the database and the cache."""

    def __init__(self, name: str, settings: NetworkSettings, *, context: AwsContext, name_prefix: str,
                 logs_key_arn: pulumi.Input[str], log_retention_days: int,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("network", "Network"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        available = aws.get_availability_zones(
            state="available", filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=pulumi.InvokeOptions(parent=self)).names
        if len(available) < settings.az_count:
            raise pulumi.RunError(f"network.azCount is {settings.az_count} but {context.region} offers "
                                  f"{len(available)} availability zones ({', '.join(available)}); lower it.")
        self.zones = sorted(available)[:settings.az_count]
        cidrs = subnet_cidrs(settings.cidr, settings.subnet_prefix_length, settings.az_count)

        # An Amazon-provided IPv6 /56 as well: the public subnets get a /64 each for the dual-stack load balancer.
        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=settings.cidr, enable_dns_support=True,
                               enable_dns_hostnames=True, assign_generated_ipv6_cidr_block=True,
                               tags={"Name": name_prefix}, opts=child)
        vpc_child = pulumi.ResourceOptions(parent=self.vpc)
        # Adopting the default security group with no rules strips the allow-all rules AWS puts in it.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=self.vpc.id, ingress=[], egress=[],
                                     tags={"Name": f"{name_prefix}-default-unused"}, opts=vpc_child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags={"Name": name_prefix}, opts=vpc_child)

        def ipv6_block(index: int) -> pulumi.Output[str]:
            return self.vpc.ipv6_cidr_block.apply(
                lambda block: str(list(ipaddress.ip_network(block).subnets(new_prefix=64))[index]))

        self.subnets: dict[str, list[aws.ec2.Subnet]] = {
            tier: [
                aws.ec2.Subnet(f"{name}-{tier}-{i + 1}", vpc_id=self.vpc.id, cidr_block=block,
                               ipv6_cidr_block=ipv6_block(i) if tier == "public" else None,
                               availability_zone=zone, map_public_ip_on_launch=False,
                               tags={"Name": f"{name_prefix}-{tier}-{zone}", "Tier": tier}, opts=vpc_child)
                for i, (zone, block) in enumerate(zip(self.zones, cidrs[tier], strict=True))
            ]
            for tier in TIERS
        }

        public_table = self._route_table(name, "public", self.subnets["public"], name_prefix)
        aws.ec2.Route(f"{name}-public-default", route_table_id=public_table.id, destination_cidr_block="0.0.0.0/0",
                      gateway_id=igw.id, opts=pulumi.ResourceOptions(parent=public_table))
        aws.ec2.Route(f"{name}-public-default-ipv6", route_table_id=public_table.id,
                      destination_ipv6_cidr_block="::/0", gateway_id=igw.id,
                      opts=pulumi.ResourceOptions(parent=public_table))

        nats = []
        if settings.nat_gateways != "none":
            count = 1 if settings.nat_gateways == "single" else settings.az_count
            for i in range(count):
                eip = aws.ec2.Eip(f"{name}-nat-{i + 1}", domain="vpc",
                                  tags={"Name": f"{name_prefix}-nat-{self.zones[i]}"},
                                  opts=pulumi.ResourceOptions(parent=self.vpc, depends_on=[igw]))
                nats.append(aws.ec2.NatGateway(f"{name}-nat-{i + 1}", allocation_id=eip.allocation_id,
                                               subnet_id=self.subnets["public"][i].id,
                                               tags={"Name": f"{name_prefix}-nat-{self.zones[i]}"},
                                               opts=vpc_child))
        # One private route table per AZ when each AZ has its own NAT gateway (an AZ outage then takes only its own
        # egress down); one shared table otherwise.
        if settings.nat_gateways == "perAz":
            private_tables = [self._route_table(name, f"private-{i + 1}", [subnet], name_prefix)
                              for i, subnet in enumerate(self.subnets["private"])]
        else:
            private_tables = [self._route_table(name, "private", self.subnets["private"], name_prefix)]
        for i, table in enumerate(private_tables if nats else []):
            suffix = f"-{i + 1}" if len(private_tables) > 1 else ""
            aws.ec2.Route(f"{name}-private{suffix}-default", route_table_id=table.id,
                          destination_cidr_block="0.0.0.0/0", nat_gateway_id=nats[i].id,
                          opts=pulumi.ResourceOptions(parent=table))
        self._route_table(name, "isolated", self.subnets["isolated"], name_prefix)

        # Its policy names the stack's buckets, which exist later: allow_buckets() sets it.
        self.s3_endpoint = aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=self.vpc.id, vpc_endpoint_type="Gateway",
                                               service_name=f"com.amazonaws.{context.region}.s3",
                                               route_table_ids=[t.id for t in private_tables],
                                               tags={"Name": f"{name_prefix}-s3"}, opts=vpc_child)
        self._name, self._context = name, context
        if settings.interface_endpoints:
            endpoint_sg = aws.ec2.SecurityGroup(f"{name}-endpoints", vpc_id=self.vpc.id,
                                                description="Interface endpoints: HTTPS from inside the VPC",
                                                tags={"Name": f"{name_prefix}-endpoints"}, opts=vpc_child)
            aws.vpc.SecurityGroupIngressRule(f"{name}-endpoints-https", security_group_id=endpoint_sg.id,
                                             ip_protocol="tcp", from_port=443, to_port=443,
                                             cidr_ipv4=settings.cidr, description="HTTPS from the VPC",
                                             opts=pulumi.ResourceOptions(parent=endpoint_sg))
            # Without NAT, AWS APIs are reachable only through endpoints: KMS (the backup jobs) needs one too.
            services = INTERFACE_ENDPOINTS + (("kms",) if settings.nat_gateways == "none" else ())
            for service in services:
                aws.ec2.VpcEndpoint(f"{name}-{service.replace('.', '-')}", vpc_id=self.vpc.id,
                                    vpc_endpoint_type="Interface",
                                    service_name=f"com.amazonaws.{context.region}.{service}",
                                    private_dns_enabled=True, subnet_ids=[s.id for s in self.subnets["private"]],
                                    security_group_ids=[endpoint_sg.id], tags={"Name": f"{name_prefix}-{service}"},
                                    policy=json.dumps(interface_endpoint_policy(context, service)), opts=vpc_child)

        self._flow_log(name, settings, context, name_prefix, logs_key_arn, log_retention_days)

        # The security groups of what runs in the private subnets live here because the data tier trusts them. Each
        # reaches AWS's APIs (through the endpoints or NAT) and the internet's HTTPS on 443, and nothing else until
        # the data tier opens its port to it (reachable_only_from); ingress to the application is the serving path's.
        self.app_security_group = self._private_group(name, "app", "Application tasks", name_prefix)
        self.jobs_security_group = self._private_group(name, "jobs", "Backup and restore-drill tasks", name_prefix)
        self.rotation_security_group = self._private_group(name, "rotation", "Credential rotation functions",
                                                           name_prefix)

        self.vpc_id = self.vpc.id
        self.public_subnet_ids = [s.id for s in self.subnets["public"]]
        self.private_subnet_ids = [s.id for s in self.subnets["private"]]
        self.isolated_subnet_ids = [s.id for s in self.subnets["isolated"]]
        self.register_outputs({
            "vpc_id": self.vpc_id,
            "zones": self.zones,
            "public_subnet_ids": self.public_subnet_ids,
            "private_subnet_ids": self.private_subnet_ids,
            "isolated_subnet_ids": self.isolated_subnet_ids,
            "app_security_group_id": self.app_security_group.id,
            "jobs_security_group_id": self.jobs_security_group.id,
            "rotation_security_group_id": self.rotation_security_group.id,
        })

    def allow_buckets(self, bucket_arns: list[pulumi.Input[str]]) -> aws.ec2.VpcEndpointPolicy:
        """Limit the S3 endpoint to these buckets and the region's ECR image layers, for this account's principals:
        nothing in the private subnets can move data to another bucket through it."""
        document = pulumi.Output.all(*bucket_arns).apply(
            lambda arns: json.dumps(s3_endpoint_policy(self._context, list(arns))))
        return aws.ec2.VpcEndpointPolicy(f"{self._name}-s3", vpc_endpoint_id=self.s3_endpoint.id, policy=document,
                                         opts=pulumi.ResourceOptions(parent=self.s3_endpoint))

    def _private_group(self, name: str, label: str, description: str, name_prefix: str) -> aws.ec2.SecurityGroup:
        group = aws.ec2.SecurityGroup(f"{name}-{label}", vpc_id=self.vpc.id, description=description,
                                      tags={"Name": f"{name_prefix}-{label}"},
                                      opts=pulumi.ResourceOptions(parent=self.vpc))
        aws.vpc.SecurityGroupEgressRule(f"{name}-{label}-https", security_group_id=group.id, ip_protocol="tcp",
                                        from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0",
                                        description="AWS APIs through the endpoints or NAT, and HTTPS out",
                                        opts=pulumi.ResourceOptions(parent=group))
        return group

    def _route_table(self, name: str, label: str, subnets: list[aws.ec2.Subnet],
                     name_prefix: str) -> aws.ec2.RouteTable:
        table = aws.ec2.RouteTable(f"{name}-{label}", vpc_id=self.vpc.id, tags={"Name": f"{name_prefix}-{label}"},
                                   opts=pulumi.ResourceOptions(parent=self.vpc))
        for i, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(f"{name}-{label}-{i + 1}", route_table_id=table.id, subnet_id=subnet.id,
                                          opts=pulumi.ResourceOptions(parent=table))
        return table

    def _flow_log(self, name: str, settings: NetworkSettings, context: AwsContext, name_prefix: str,
                  kms_key_arn: pulumi.Input[str], retention_days: int) -> None:
        log_group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", name=f"/vpc/{name_prefix}/flow-logs",
                                            retention_in_days=retention_days, kms_key_id=kms_key_arn,
                                            opts=pulumi.ResourceOptions(parent=self))
        role = aws.iam.Role(
            f"{name}-flow-logs",
            description=f"{name_prefix}: VPC flow logs write to their log group",
            assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com", context,
                                                  context.arn("ec2", "vpc-flow-log/*")),
            opts=pulumi.ResourceOptions(parent=log_group))
        aws.iam.RolePolicy(f"{name}-flow-logs", role=role.id, policy=pulumi.Output.json_dumps(policy(
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
            },
            {
                # DescribeLogGroups takes no resource-level permissions.
                "Effect": "Allow",
                "Action": "logs:DescribeLogGroups",
                "Resource": "*",
            },
        )), opts=pulumi.ResourceOptions(parent=role))
        aws.ec2.FlowLog(f"{name}-flow-log", vpc_id=self.vpc.id, traffic_type=settings.flow_log_traffic_type,
                        log_destination_type="cloud-watch-logs", log_destination=log_group.arn,
                        iam_role_arn=role.arn, max_aggregation_interval=60,
                        tags={"Name": f"{name_prefix}-flow-log"}, opts=pulumi.ResourceOptions(parent=self.vpc))
