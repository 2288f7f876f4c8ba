"""The mocked cloud: realistic answers to the program's invokes (availability zones, caller identity, region,
partition, ...) and realistic computed outputs of its resources (ids, ARNs, endpoints, ports), region-aware per
provider, deterministic so that every run of a stack reads the same."""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Callable

import pulumi

ACCOUNT = "123456789012"


def _hex(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc-", "aws:ec2/subnet:Subnet": "subnet-", "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg-", "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-", "aws:ec2/eip:Eip": "eipalloc-", "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-", "aws:ec2/flowLog:FlowLog": "fl-",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
}


class CloudMocks(pulumi.runtime.Mocks):
    """Realistic answers for invokes and computed outputs for resources, region-aware per provider."""

    def __init__(self, region: str):
        self.region = region
        self.provider_regions: dict[str, str] = {}

    def region_of(self, provider_ref: str | None) -> str:
        return self.provider_regions.get((provider_ref or "").split("::")[-1], self.region)

    def call(self, args: pulumi.runtime.MockCallArgs):
        region = args.args.get("region") or self.region_of(args.provider)
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{letter}" for letter in "abc"]
            return {"names": names, "zoneIds": [f"{region[:3]}{region[-1]}-az{i + 1}" for i in range(3)],
                    "id": region, "groupNames": [region] * 3, "state": args.args.get("state")}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer", "userId": "AIDAEXAMPLE",
                    "id": ACCOUNT}
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": region, "name": region, "id": region, "description": region,
                    "endpoint": f"ec2.{region}.amazonaws.com"}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws",
                    "id": "aws"}
        if args.token == "aws:elb/getServiceAccount:getServiceAccount":
            account = "156460612806" if region == "eu-west-1" else "0" + _hex("elb", region, length=11)
            return {"arn": f"arn:aws:iam::{account}:root", "id": account, "region": region}
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            registry = f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com"
            return {"authorizationToken": "QVdTOnRva2Vu", "userName": "AWS", "password": "registry-token",
                    "proxyEndpoint": f"https://{registry}", "expiresAt": "2030-01-01T00:00:00Z", "id": region}
        raise NotImplementedError(f"the offline harness has no answer for invoke {args.token}; add one to "
                                  "infra/offline/mocks.py")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs, name, typ = args.inputs, args.name, args.typ
        region = inputs.get("region") or self.region_of(args.provider)
        if typ.startswith("pulumi:providers:"):
            ident = _hex(typ, name, length=32)
            self.provider_regions[ident] = inputs.get("region", self.region)
            return ident, inputs
        physical = inputs.get("name") or f"{inputs.get('namePrefix') or name + '-'}{_hex(typ, name, length=7)}"
        ident = ID_PREFIXES.get(typ, "") + _hex(typ, name) if typ in ID_PREFIXES else physical
        module, kind = typ.split(":")[1].split("/")[0], typ.split(":")[2].lower()
        outputs = {"arn": f"arn:aws:{module}:{region}:{ACCOUNT}:{kind}/{ident}", "name": physical}
        computed = COMPUTED.get(typ)
        if computed:
            ident, extra = computed(name, inputs, region, physical)
            outputs.update(extra)
        return ident, {**inputs, **outputs}


def _kms_key(name, inputs, region, physical):
    key_id = f"{_hex('kms', name, length=8)}-{_hex('kms1', name, length=4)}-4{_hex('kms2', name, length=3)}-" \
             f"8{_hex('kms3', name, length=3)}-{_hex('kms4', name, length=12)}"
    return key_id, {"keyId": key_id, "arn": f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"}


def _secret(name, inputs, region, physical):
    arn = f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{physical}-{_hex('s', name, length=6)}"
    return arn, {"arn": arn}


def _log_group(name, inputs, region, physical):
    return physical, {"arn": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{physical}"}


def _role(name, inputs, region, physical):
    return physical, {"arn": f"arn:aws:iam::{ACCOUNT}:role/{physical}", "uniqueId": "AROA" + _hex(name).upper()}


def _db_instance(name, inputs, region, physical):
    identifier = inputs.get("identifier") or physical
    address = f"{identifier}.c{_hex('rds', length=11)}.{region}.rds.amazonaws.com"
    resource_id = "db-" + _hex("db", name, length=26).upper()
    return resource_id, {"identifier": identifier, "address": address, "port": 5432, "endpoint": f"{address}:5432",
                         "resourceId": resource_id, "arn": f"arn:aws:rds:{region}:{ACCOUNT}:db:{identifier}"}


def _replication_group(name, inputs, region, physical):
    group_id = inputs.get("replicationGroupId") or physical
    suffix = f"{_hex('ec', length=6)}.{region}.cache.amazonaws.com"
    nodes = int(inputs.get("numCacheClusters") or 1)
    return group_id, {"primaryEndpointAddress": f"master.{group_id}.{suffix}",
                      "readerEndpointAddress": f"replica.{group_id}.{suffix}", "port": 6379,
                      "memberClusters": [f"{group_id}-00{i + 1}" for i in range(nodes)],
                      "arn": f"arn:aws:elasticache:{region}:{ACCOUNT}:replicationgroup:{group_id}"}


def _named_arn(service: str, kind: str, sep: str = ":"):
    def computed(name, inputs, region, physical):
        return physical, {"arn": f"arn:aws:{service}:{region}:{ACCOUNT}:{kind}{sep}{physical}"}
    return computed


def _backup_plan(name, inputs, region, physical):
    plan_id = _hex("plan", name, length=32)
    return plan_id, {"arn": f"arn:aws:backup:{region}:{ACCOUNT}:backup-plan:{plan_id}", "version": "1"}


def _eip(name, inputs, region, physical):
    ident = "eipalloc-" + _hex("eip", name)
    return ident, {"allocationId": ident, "publicIp": f"198.51.100.{int(_hex(name, length=2), 16) % 250 + 1}"}


def _vpc(name, inputs, region, physical):
    ident = "vpc-" + _hex("vpc", name)
    ipv6 = {"ipv6CidrBlock": f"2a05:d018:{_hex('v6', name, length=3)}:f600::/56"} if inputs.get(
        "assignGeneratedIpv6CidrBlock") else {}
    return ident, {"defaultSecurityGroupId": "sg-" + _hex("default", name), "mainRouteTableId": "rtb-" +
                   _hex("main", name), "arn": f"arn:aws:ec2:{region}:{ACCOUNT}:vpc/{ident}", **ipv6}


def _random_password(name, inputs, region, physical):
    alphabet = ""
    if inputs.get("upper", True):
        alphabet += string.ascii_uppercase
    if inputs.get("lower", True):
        alphabet += string.ascii_lowercase
    if inputs.get("numeric", True):
        alphabet += string.digits
    if inputs.get("special", True):
        alphabet += inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
    rng = random.Random(name)
    result = "".join(rng.choice(alphabet) for _ in range(int(inputs["length"])))
    return name, {"result": result, "bcryptHash": "$2a$10$" + _hex("bcrypt", name, length=53)}


def _random_id(name, inputs, region, physical):
    hex_value = _hex("random-id", name, length=2 * int(inputs["byteLength"]))
    return hex_value, {"hex": hex_value, "dec": str(int(hex_value, 16)), "b64Url": hex_value, "b64Std": hex_value}


def _ecr_repository(name, inputs, region, physical):
    return physical, {"repositoryUrl": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{physical}",
                      "registryId": ACCOUNT, "arn": f"arn:aws:ecr:{region}:{ACCOUNT}:repository/{physical}"}


def _docker_image(name, inputs, region, physical):
    repository = inputs["imageName"].rsplit(":", 1)[0]
    digest = hashlib.sha256(inputs["imageName"].encode()).hexdigest()
    return f"{repository}@sha256:{digest}", {"repoDigest": f"{repository}@sha256:{digest}"}


def _load_balancer(name, inputs, region, physical):
    suffix = f"app/{physical[:32]}/{_hex('alb', name, length=16)}"
    return (f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:loadbalancer/{suffix}",
            {"arn": f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:loadbalancer/{suffix}", "arnSuffix": suffix,
             "dnsName": f"{physical[:32]}-{int(_hex('dns', name, length=8), 16)}.{region}.elb.amazonaws.com",
             "zoneId": "Z32O12XQLNTSW2"})


def _target_group(name, inputs, region, physical):
    suffix = f"targetgroup/{physical[:32]}/{_hex('tg', name, length=16)}"
    arn = f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:{suffix}"
    return arn, {"arn": arn, "arnSuffix": suffix}


def _certificate(name, inputs, region, physical):
    arn = f"arn:aws:acm:{region}:{ACCOUNT}:certificate/{_hex('acm', name, length=8)}-0000-4000-8000-" \
          f"{_hex('acm2', name, length=12)}"
    domain = inputs["domainName"]
    return arn, {"arn": arn, "domainValidationOptions": [{
        "domainName": domain, "resourceRecordName": f"_{_hex('r', domain, length=32)}.{domain}.",
        "resourceRecordType": "CNAME", "resourceRecordValue": f"_{_hex('v', domain, length=32)}.acm-validations.aws."}]}


def _bucket(name, inputs, region, physical):
    bucket = inputs.get("bucket") or physical.lower()
    return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}",
                    "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com"}


def _task_definition(name, inputs, region, physical):
    arn = f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{inputs['family']}:1"
    return arn, {"arn": arn, "revision": 1, "arnWithoutRevision": arn.rsplit(":", 1)[0]}


def _ecs_named(kind: str):
    def computed(name, inputs, region, physical):
        arn = f"arn:aws:ecs:{region}:{ACCOUNT}:{kind}/{physical}"
        return arn, {"arn": arn, "name": physical}
    return computed


def _lambda_function(name, inputs, region, physical):
    arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{physical}"
    return physical, {"arn": arn, "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/"
                      "invocations", "qualifiedArn": f"{arn}:$LATEST", "version": "$LATEST"}


def _serverless_application(name, inputs, region, physical):
    """A Serverless Application Repository stack: the rotation applications answer with their function's ARN."""
    stack_id = (f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/serverlessrepo-{physical}/"
                f"{_hex('cfn', name, length=36)}")
    function = (inputs.get("parameters") or {}).get("functionName", physical)
    return stack_id, {"outputs": {"RotationLambdaARN": f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function}"}}


def _web_acl(name, inputs, region, physical):
    """A regional web ACL: its ARN names the scope, the name and an id."""
    ident = f"{_hex('waf', name, length=8)}-{_hex('waf1', name, length=4)}-4{_hex('waf2', name, length=3)}-" \
            f"8{_hex('waf3', name, length=3)}-{_hex('waf4', name, length=12)}"
    return ident, {"arn": f"arn:aws:wafv2:{region}:{ACCOUNT}:regional/webacl/{physical}/{ident}", "capacity": 1127,
                   "lockToken": _hex("lock", name, length=32)}


COMPUTED: dict[str, Callable] = {
    "aws:wafv2/webAcl:WebAcl": _web_acl,
    "aws:lambda/function:Function": _lambda_function,
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": _serverless_application,
    "aws:ecr/repository:Repository": _ecr_repository,
    "docker:index/image:Image": _docker_image,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:acm/certificate:Certificate": _certificate,
    "aws:acm/certificateValidation:CertificateValidation": lambda n, i, r, p: (i["certificateArn"], {}),
    "aws:route53/record:Record": lambda n, i, r, p: (f"{i['zoneId']}_{i['name']}_{i['type']}", {"fqdn": i["name"]}),
    "aws:s3/bucket:Bucket": _bucket,
    "aws:ecs/taskDefinition:TaskDefinition": _task_definition,
    "aws:ecs/cluster:Cluster": _ecs_named("cluster"),
    "aws:ecs/service:Service": _ecs_named("service"),
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _named_arn("kms", "", ""),
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:iam/role:Role": _role,
    "aws:rds/instance:Instance": _db_instance,
    "aws:rds/subnetGroup:SubnetGroup": _named_arn("rds", "subgrp"),
    "aws:rds/parameterGroup:ParameterGroup": _named_arn("rds", "pg"),
    "aws:elasticache/replicationGroup:ReplicationGroup": _replication_group,
    "aws:elasticache/subnetGroup:SubnetGroup": _named_arn("elasticache", "subnetgroup"),
    "aws:elasticache/parameterGroup:ParameterGroup": _named_arn("elasticache", "parametergroup"),
    "aws:backup/vault:Vault": _named_arn("backup", "backup-vault"),
    "aws:backup/plan:Plan": _backup_plan,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/vpc:Vpc": _vpc,
    "random:index/randomPassword:RandomPassword": _random_password,
    "random:index/randomId:RandomId": _random_id,
}
