"""LoadBalancer component: security group, HTTPS/HTTP listeners, certificate paths, target group, access logs."""

import json

import pytest

from infra.components.load_balancer import HSTS, LoadBalancer
from infra.offline import harness
from tests.infra.conftest import CONTEXT, settings_for

APP_SG = "sg-0a0a0a0a0a0a0a0a0"
CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-000000000000"


def build(tier="prod", **lb) -> harness.Run:
    s = settings_for(tier, loadBalancer=lb)
    return harness.run(lambda: LoadBalancer(
        "lb", s.load_balancer, context=CONTEXT, name_prefix=f"flask-aws-{tier}", vpc_id="vpc-1",
        subnet_ids=["subnet-a", "subnet-b", "subnet-c"], app_security_group_id=APP_SG, app_port=8000,
        log_retention_days=s.logs.retention_days, protect=s.protect))


def listeners(run) -> dict[int, dict]:
    return {r.inputs["port"]: r.inputs for r in run.of_type("aws:lb/listener:Listener")}


def test_security_group_admits_80_and_443_from_anywhere_and_reaches_only_the_app_port():
    run = build()
    ingress = {(r.inputs["fromPort"], r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6"))
               for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")}
    assert ingress == {(80, "0.0.0.0/0"), (80, "::/0"), (443, "0.0.0.0/0"), (443, "::/0")}
    (egress,) = run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert (egress.inputs["fromPort"], egress.inputs["toPort"]) == (8000, 8000)
    assert egress.inputs["referencedSecurityGroupId"] == APP_SG and "cidrIpv4" not in egress.inputs


def test_alb_is_public_dual_stack_strict_and_logged():
    run = build()
    alb = run.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["internal"] is False and alb["loadBalancerType"] == "application"
    assert alb["ipAddressType"] == "dualstack" and alb["subnets"] == ["subnet-a", "subnet-b", "subnet-c"]
    assert alb["dropInvalidHeaderFields"] is True
    assert alb["enableDeletionProtection"] is True and alb["idleTimeout"] == 60
    bucket = run.one("aws:s3/bucket:Bucket")
    assert alb["accessLogs"] == {"bucket": bucket.outputs["bucket"], "enabled": True, "prefix": "alb"}
    assert build("dev").one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is False


def test_access_log_bucket_is_private_sse_s3_tls_only_and_expires():
    run = build()
    assert run.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration") \
        .inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    block = run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                  "restrictPublicBuckets"))
    assert run.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"}
    (rule,) = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["expiration"] == {"days": 90} and rule["status"] == "Enabled"
    statements = {s["Sid"]: s for s in json.loads(run.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])[
        "Statement"]}
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    arn = run.one("aws:s3/bucket:Bucket").outputs["arn"]
    assert statements["LogDeliveryWritesAccessLogs"]["Resource"] == f"{arn}/alb/AWSLogs/{harness.ACCOUNT}/*"
    assert statements["LogDeliveryWritesAccessLogs"]["Principal"] == {
        "Service": "logdelivery.elasticloadbalancing.amazonaws.com"}


def test_target_group_checks_liveness_explicitly_and_drains_quickly():
    tg = build().one("aws:lb/targetGroup:TargetGroup").inputs
    assert (tg["targetType"], tg["port"], tg["protocol"]) == ("ip", 8000, "HTTP")
    assert tg["healthCheck"] == {"enabled": True, "path": "/health", "protocol": "HTTP", "port": "traffic-port",
                                 "matcher": "200", "interval": 15, "timeout": 5, "healthyThreshold": 2,
                                 "unhealthyThreshold": 3}
    assert tg["deregistrationDelay"] <= 30 and tg["slowStart"] == 30


def test_https_with_tls13_policy_headers_and_http_redirect():
    run = build()
    by_port = listeners(run)
    https, http = by_port[443], by_port[80]
    assert https["protocol"] == "HTTPS" and https["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-")
    assert https["defaultActions"][0]["type"] == "forward"
    assert https["routingHttpResponseStrictTransportSecurityHeaderValue"] == HSTS
    assert https["routingHttpResponseXContentTypeOptionsHeaderValue"] == "nosniff"
    assert https["routingHttpResponseXFrameOptionsHeaderValue"] == "DENY"
    assert https["routingHttpResponseServerEnabled"] is False
    assert http["defaultActions"] == [{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443",
                                                                        "statusCode": "HTTP_301"}}]


def test_dns_validated_certificate_and_alias_records():
    run = build()
    certificate = run.one("aws:acm/certificate:Certificate")
    assert certificate.inputs["domainName"] == "prod.example.com"
    assert certificate.inputs["validationMethod"] == "DNS"
    validation = run.one("aws:acm/certificateValidation:CertificateValidation")
    assert listeners(run)[443]["certificateArn"] == validation.outputs["certificateArn"] == \
        certificate.outputs["arn"]
    records = {r.inputs["type"]: r.inputs for r in run.of_type("aws:route53/record:Record")}
    assert records["CNAME"]["name"].startswith("_")
    assert records["A"]["aliases"][0]["evaluateTargetHealth"] is True and records["AAAA"]["name"] == \
        "prod.example.com"


def test_an_existing_certificate_is_used_as_is():
    run = build(certificateArn=CERT, hostedZoneId="")
    assert run.of_type("aws:acm/certificate:Certificate") == []
    assert run.of_type("aws:route53/record:Record") == []
    assert listeners(run)[443]["certificateArn"] == CERT


@pytest.mark.parametrize("tier", ["dev"])
def test_plain_http_only_by_explicit_setting(tier):
    run = build(tier)
    assert list(listeners(run)) == [80]
    http = listeners(run)[80]
    assert http["defaultActions"][0]["type"] == "forward"
    assert http["routingHttpResponseXContentTypeOptionsHeaderValue"] == "nosniff"
    assert http["routingHttpResponseServerEnabled"] is False
    assert "routingHttpResponseStrictTransportSecurityHeaderValue" not in http
