"""Operations run from a workstation or CI with boto3: RDS snapshots (snapshots.py), the self-managed Pulumi state
backend (backend.py) and post-deploy verification (verify.py). Each is `python -m ops.<name> --help`; each failure
is one line naming the problem and a non-zero exit. AWS_ENDPOINT_URL (botocore) points them at another endpoint,
which is how the tests run them against moto."""


class OpsError(Exception):
    """A command that cannot go on; the message says what is wrong and what to do."""
