"""moto's standalone server standing in for AWS, for the tests and the benchmarks (never deployed, so not in
deploy/)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from deploy.local.servers import free_port, wait_until


class MotoServer:
    """moto's standalone AWS stand-in on a loopback port (tests and benchmarks). enforce_iam: requests after the
    first `free_requests` are checked against moto's IAM users and policies, so AccessDenied can be tested."""

    def __init__(self, enforce_iam: bool = False, free_requests: int = 0, port: int | None = None,
                 settings: dict[str, str] | None = None):
        self.port = port or free_port()
        self.enforce_iam, self.free_requests = enforce_iam, free_requests
        self.settings = settings or {}  # moto's own environment switches, e.g. MOTO_ECS_SERVICE_RUNNING
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        env = {**os.environ, **self.settings}
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        if self.enforce_iam:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.free_requests)
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers, 30, f"moto on {self.port}")
        return self

    def answers(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=1) as response:
            return response.status == 200

    def reset(self) -> None:
        """Forget every resource (between tests)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def environment(self, region: str = "eu-west-1") -> dict[str, str]:
        """What boto3 needs to talk to this server instead of AWS."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "NO_PROXY": "127.0.0.1,localhost"}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None
