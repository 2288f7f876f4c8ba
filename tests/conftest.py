"""Shared fixtures: the real servers every layer above the infrastructure uses (PostgreSQL primary + streaming
replica, Redis, moto), started once per session on free loopback ports. The infra tests run the real program under
Pulumi's mock engine through infra.offline.harness."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from deploy.local.servers import PostgresServer, RedisServer
from tests.moto_server import MotoServer

# Property tests (tests/strategies.py) run the same bounded set of examples every time: a failure found in CI is
# found again locally, and nothing is written to a .hypothesis directory. HYPOTHESIS_PROFILE=explore searches more.
settings.register_profile("suite", derandomize=True, database=None, deadline=None, max_examples=100,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", database=None, deadline=None, max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


@pytest.fixture(scope="session")
def stacks():
    """Each stack's program run once per session under Pulumi's mock engine (infra.offline.harness): the recorded
    plans the infrastructure tests check and the container tests run the image by."""
    from infra.offline import harness

    return {stack: harness.run_stack(stack) for stack in ("dev", "staging", "prod")}


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL 15 primary and a streaming replica (pg_basebackup), for the whole session."""
    primary = PostgresServer.create()
    try:
        replica = PostgresServer.replica_of(primary)
        try:
            yield primary, replica
        finally:
            replica.destroy()
    finally:
        primary.destroy()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def moto_server():
    """moto's standalone server; tests get a reset one through the `aws` fixture."""
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch):
    """boto3 in this process (and its children) talks to a freshly reset moto server, never to AWS."""
    moto_server.reset()
    for key, value in moto_server.environment().items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return moto_server
