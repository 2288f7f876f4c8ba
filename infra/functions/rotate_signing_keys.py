"""Secrets Manager rotation function for the Flask key set (JSON current, next, previous), deployed by
infra/components/rotation.py. Written here because AWS publishes rotation functions for databases and other services,
none for an application's own signing key.

Each rotation moves the keys on: previous <- current <- next <- a new random key. Every process signs with current
and accepts next and previous (app/webapp/sessions.py), so a key is accepted everywhere for a whole period before any
process signs with it, and for a period after: no session or signed value breaks. It follows Secrets Manager's
four-step protocol (createSecret, setSecret, testSecret, finishSecret); the key lives nowhere else, so setSecret has
nothing to do. The runtime's boto3 is the only dependency.
"""

from __future__ import annotations

import json
import logging
import secrets

import boto3

log = logging.getLogger()
log.setLevel(logging.INFO)
KEYS = ("current", "next", "previous")
MIN_LENGTH = 32


def lambda_handler(event, context, client=None):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    client = client or boto3.client("secretsmanager")
    metadata = client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise ValueError(f"secret {arn} is not enabled for rotation")
    stages = metadata.get("VersionIdsToStages", {}).get(token)
    if stages is not None and "AWSCURRENT" in stages:
        log.info("%s: version %s is already AWSCURRENT", step, token)
        return
    if step != "createSecret" and (stages is None or "AWSPENDING" not in stages):
        raise ValueError(f"version {token} of secret {arn} is not AWSPENDING")
    steps = {"createSecret": create, "setSecret": lambda *_: None, "testSecret": test, "finishSecret": finish}
    if step not in steps:
        raise ValueError(f"unknown rotation step {step!r}")
    steps[step](client, arn, token)


def rotated(keys: dict) -> dict:
    return {"previous": keys["current"], "current": keys["next"], "next": secrets.token_urlsafe(48)}


def create(client, arn: str, token: str) -> None:
    """The pending version: the current key set moved on by one (once: a retried step finds it made)."""
    try:
        client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        log.info("createSecret: version %s exists already", token)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    current = json.loads(client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    client.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(rotated(current)),
                            VersionStages=["AWSPENDING"])
    log.info("createSecret: version %s created", token)


def test(client, arn: str, token: str) -> None:
    """The pending key set has a strong current and next key, and its current key is the present set's next (the
    one every process already accepts). When rotation is configured without rotating, Secrets Manager tests the
    function on a pending copy of the present set: that passes on the strength of its keys alone."""
    pending = json.loads(client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
                         ["SecretString"])
    current = json.loads(client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    if any(len(pending.get(key) or "") < MIN_LENGTH for key in ("current", "next")):
        raise ValueError(f"version {token}: the current and next keys must have {MIN_LENGTH} characters or more")
    if pending == current:
        return
    if pending["current"] != current["next"] or len({pending[key] for key in KEYS}) != len(KEYS):
        raise ValueError(f"version {token}: not the present key set moved on by one")


def finish(client, arn: str, token: str) -> None:
    metadata = client.describe_secret(SecretId=arn)
    current = next(version for version, stages in metadata["VersionIdsToStages"].items() if "AWSCURRENT" in stages)
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current)
    log.info("finishSecret: version %s is AWSCURRENT", token)
