"""Shared fixtures: the real servers every layer above the infrastructure uses (PostgreSQL primary + streaming
replica, Redis, moto), started once per session on free loopback ports. The infra tests run the real program under
Pulumi's mock engine through infra.offline.harness."""

from __future__ import annotations

import pytest

from deploy.local.servers import PostgresServer, RedisServer
from tests.moto_server import MotoServer


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
