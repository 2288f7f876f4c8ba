"""Rate limits (the `limits` package on the real Redis): shared by every process, per client address for every request
and per token for writes, 429 JSON with Retry-After and RateLimit headers, and the service going on when Redis is
down."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture
def limited(monkeypatch, pg_env):
    monkeypatch.setenv("RATE_LIMIT_PER_ADDRESS", "6 per minute")
    monkeypatch.setenv("RATE_LIMIT_WRITES", "2 per minute")
    import redis

    redis.Redis.from_url(pg_env["REDIS_URL"]).flushall()
    from webapp import create_app

    return create_app("testing")


def test_every_request_of_an_address_counts_and_the_answer_is_429_json(limited):
    client = limited.test_client()
    answers = [client.get("/api/notes") for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 6 + [429]
    # No limit headers on ordinary answers (writing them costs a Redis round trip per request); the 429 has them.
    assert "RateLimit-Limit" not in answers[0].headers and "Retry-After" not in answers[0].headers
    refused = answers[-1]
    assert refused.headers["RateLimit-Limit"] == "6" and refused.headers["RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["RateLimit-Reset"]) <= 61
    assert refused.json["error"] == "too_many_requests" and "6 per 1 minute" in refused.json["message"]
    assert refused.json["request_id"] == refused.headers["X-Request-ID"]
    assert 0 < int(refused.headers["Retry-After"]) <= 61
    assert client.get("/health").status_code == 200  # the load balancer's check is never limited
    other = client.get("/api/notes", environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 200  # another address has its own count


def test_the_count_is_in_redis_so_every_process_shares_it(limited, pg_env):
    client = limited.test_client()
    for _ in range(4):
        assert client.get("/api/notes").status_code == 200
    # Another process (a second worker or task) from the same address: two more, then refused.
    script = ("from webapp import create_app\n"
              "client = create_app('testing').test_client()\n"
              "print(' '.join(str(client.get('/api/notes').status_code) for _ in range(3)))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=APP, env={**os.environ}, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "200 200 429", done.stderr


def test_writes_are_limited_per_token(limited, pg_env, postgres):
    from tests.app.conftest import token_client

    writer = limited.test_client()
    assert [writer.post("/api/notes", json={"title": "x"}).status_code for _ in range(3)] == [201, 201, 429]
    with limited.app_context():
        from webapp import tokens

        other = tokens.create("other-writer")
    limited.test_client_class = token_client(other)
    assert limited.test_client().post("/api/notes", json={"title": "x"}).status_code == 201


def test_with_redis_down_the_api_keeps_serving_and_says_so_once(limited, redis_up, caplog):
    redis_up.stop()
    try:
        with caplog.at_level(logging.WARNING):
            statuses = [limited.test_client().get("/api/notes").status_code for _ in range(4)]
    finally:
        redis_up.start()
    assert statuses == [200] * 4  # limits fail over to this process's memory: 6 per minute still holds here
    fallbacks = [r for r in caplog.records if "rate limit storage unreachable" in r.getMessage()]
    assert len(fallbacks) == 1


@pytest.mark.parametrize("name", ["RATE_LIMIT_PER_ADDRESS", "RATE_LIMIT_WRITES"])
def test_a_limit_that_is_not_one_is_refused_naming_it(monkeypatch, name):
    from webapp.config import ConfigError, load

    monkeypatch.setenv(name, "lots please")
    with pytest.raises(ConfigError, match=f"{name}='lots please' is not a rate limit"):
        load("testing")
