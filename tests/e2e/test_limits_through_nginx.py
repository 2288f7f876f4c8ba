"""Both lines of rate limiting, as a client meets them through nginx: nginx's limit_req per address (the coarse
one) and the application's limit per address counted in Redis (the fine one), which sees the client's address
through ProxyFix, not nginx's. Its own small topology with low limits (the session's has them out of reach)."""

from __future__ import annotations

import time

import pytest
import requests

from deploy.local.topology import LocalTopology


@pytest.fixture(scope="module")
def limited():
    topology = LocalTopology(instances=1, workers=1, nginx_rate_per_second=2,
                             extra_env={"RATE_LIMIT_PER_ADDRESS": "5 per minute"}).start()
    session = requests.Session()
    session.verify = str(topology.certificate)
    session.trust_env = False
    yield topology, session
    topology.stop()


def test_the_application_limit_counts_the_client_behind_nginx(limited):
    topology, session = limited
    statuses = []
    for _ in range(7):
        statuses.append(session.get(f"{topology.url}/api/notes", timeout=5))
        time.sleep(0.6)  # under nginx's 2 per second: only the application's limit can refuse
    assert [r.status_code for r in statuses] == [200] * 5 + [429] * 2
    refused = statuses[-1]
    assert "rate limit of 5 per 1 minute" in refused.json()["message"]
    assert int(refused.headers["Retry-After"]) > 0 and refused.headers["RateLimit-Limit"] == "5"


def test_nginx_refuses_a_burst_with_json(limited):
    topology, session = limited
    answers = [session.get(f"{topology.url}/health", timeout=5) for _ in range(30)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(a.status_code in (200, 429) for a in answers)
    body = refused[0].json()
    assert body["error"] == "too_many_requests" and body["request_id"] == refused[0].headers["X-Request-ID"]
