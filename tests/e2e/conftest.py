"""The self-hosted topology, brought up natively (deploy/local/topology.py) once for the end-to-end tests."""

import os
from pathlib import Path

import pytest
import requests

from deploy.local.topology import LocalTopology


@pytest.fixture(scope="session")
def topology():
    # The tests are one client address sending thousands of requests (schemathesis, the fuzz test): limits they do
    # not reach. The limits themselves are tested in tests/app/test_limits.py.
    topology = LocalTopology(extra_env={"HEALTH_CACHE_SECONDS": "0", "REPLICA_RETRY_SECONDS": "1",
                                        "RATE_LIMIT_PER_ADDRESS": "1000000 per minute",
                                        "RATE_LIMIT_WRITES": "1000000 per minute"},
                             nginx_rate_per_second=100_000).start()
    pids = [topology.nginx.pid, topology.redis.process.pid] + [g.process.pid for g in topology.gunicorns]
    yield topology
    topology.stop()
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "stray processes after stop"
    assert not topology.directory.exists()


@pytest.fixture
def https(topology):
    session = requests.Session()
    session.verify = str(topology.certificate)
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
    session.headers.update(topology.auth)  # the write token the topology made with `flask tokens create`
    return session


@pytest.fixture
def redis_client(topology):
    import redis

    return redis.Redis(port=topology.redis.port, password=topology.redis.password)


def gunicorn_logs(topology) -> str:
    return "".join(Path(g.log).read_text() for g in topology.gunicorns)


def nginx_log(topology) -> str:
    return Path(topology.directory / "nginx" / "access.log").read_text()


os.environ.setdefault("NO_PROXY", "localhost,127.0.0.1")
