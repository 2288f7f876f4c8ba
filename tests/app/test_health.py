"""Health checks: a cheap liveness probe, and a detailed check of every dependency with timeouts and caching."""

import socket
import threading
import time

import pytest
from webapp import create_app


def test_liveness_calls_no_dependency(monkeypatch):
    # A database that does not exist and a Redis nobody listens on: /health must not care.
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    client = create_app("testing").test_client()
    started = time.perf_counter()
    response = client.get("/health")
    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert time.perf_counter() - started < 0.5


def test_detailed_checks_every_dependency(pg_app):
    body = pg_app.test_client().get("/health/detailed")
    assert body.status_code == 200 and body.json["status"] == "ok" and body.json["failed"] == []
    checks = body.json["checks"]
    assert set(checks) == {"database", "database:replica_0", "redis", "disk", "memory"}
    assert all(c["ok"] and isinstance(c["duration_ms"], float) for c in checks.values())
    assert 0 <= checks["disk"]["percent"] <= 100 and 0 <= checks["memory"]["percent"] <= 100


def test_redis_down_is_503_naming_redis_and_recovers_without_a_restart(pg_app, redis_up):
    client = pg_app.test_client()
    redis_up.stop()
    try:
        down = client.get("/health/detailed")
        assert down.status_code == 503 and down.json["failed"] == ["redis"]
        assert "Error" in down.json["checks"]["redis"]["error"]
    finally:
        redis_up.start()
    assert client.get("/health/detailed").status_code == 200


def test_a_replica_down_is_named(pg_app, postgres):
    _, replica = postgres
    replica.stop()
    try:
        response = pg_app.test_client().get("/health/detailed")
        assert response.status_code == 503 and response.json["failed"] == ["database:replica_0"]
    finally:
        replica.start()


def test_thresholds_are_configurable(monkeypatch, pg_env):
    monkeypatch.setenv("HEALTH_DISK_MAX_PERCENT", "0")
    monkeypatch.setenv("HEALTH_MEMORY_MAX_PERCENT", "0")
    response = create_app("testing").test_client().get("/health/detailed")
    assert response.status_code == 503 and set(response.json["failed"]) == {"disk", "memory"}
    assert "above 0.0%" in response.json["checks"]["disk"]["error"]


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers: a hung dependency."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_each_check_has_its_own_timeout(monkeypatch, pg_env, silent_server):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{silent_server}/0")
    monkeypatch.setenv("REDIS_TIMEOUT_SECONDS", "30")  # the client would wait this long...
    monkeypatch.setenv("HEALTH_CHECK_TIMEOUT_SECONDS", "0.5")  # ...the health check does not
    client = create_app("testing").test_client()
    started = time.perf_counter()
    response = client.get("/health/detailed")
    elapsed = time.perf_counter() - started
    assert response.status_code == 503 and response.json["failed"] == ["redis"]
    assert response.json["checks"]["redis"]["error"] == "timed out after 0.5 s"
    assert response.json["checks"]["database"]["ok"] is True
    assert elapsed < 2


def test_results_are_cached_so_a_storm_costs_one_run(monkeypatch, pg_env):
    monkeypatch.setenv("HEALTH_CACHE_SECONDS", "60")
    app = create_app("testing")
    from webapp import health

    runs = []
    real = health.run_checks
    monkeypatch.setattr(health, "run_checks", lambda a: runs.append(1) or real(a))
    client = app.test_client()
    answers = [client.get("/health/detailed").json for _ in range(20)]
    assert len(runs) == 1 and all(a == answers[0] for a in answers)
