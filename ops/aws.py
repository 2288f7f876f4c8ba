"""boto3 clients the way every operations command wants them, and AWS errors as one readable line."""

from __future__ import annotations

import contextlib

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ops import OpsError


def client(service: str, region: str | None = None):
    return boto3.client(service, region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 5}))


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


@contextlib.contextmanager
def reported(doing: str):
    """Turn botocore's exceptions raised while `doing` into an OpsError naming it."""
    try:
        yield
    except NoCredentialsError:
        raise OpsError(f"{doing}: no AWS credentials; set AWS_PROFILE or the AWS_* variables") from None
    except ClientError as error:
        code, message = error_code(error), error.response.get("Error", {}).get("Message", "")
        hint = " (the credentials in use lack this permission)" if "AccessDenied" in code or code == "403" else ""
        raise OpsError(f"{doing}: {code}: {message}{hint}") from None
    except BotoCoreError as error:
        raise OpsError(f"{doing}: {error}") from None


def main(run) -> int:
    """Run a command's body; an OpsError becomes 'error: ...' on stderr and exit code 1."""
    import sys

    try:
        return run()
    except OpsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
