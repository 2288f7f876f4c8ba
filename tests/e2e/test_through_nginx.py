"""End to end through nginx over HTTPS: redirects, headers, static files, the data path, request ids, and what
happens when an instance, Redis or PostgreSQL goes away."""

import json
import signal

from deploy.local.servers import wait_until
from tests.e2e.conftest import gunicorn_logs, nginx_log


def test_http_redirects_to_https(topology):
    import requests

    response = requests.get(f"{topology.http_url}/api/notes?page=2", allow_redirects=False, timeout=5)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://localhost:{topology.https_port}/api/notes?page=2"


def test_security_headers_once_each_and_no_version_disclosed(topology, https):
    response = https.get(f"{topology.url}/health", timeout=5)
    assert response.status_code == 200
    raw = response.raw.headers
    for name, value in (("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
                        ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY")):
        assert raw.getlist(name) == [value], name
    assert response.headers["Server"] == "nginx"


def test_static_files_are_served_by_nginx_with_immutable_caching(topology, https):
    css = https.get(f"{topology.url}/static/css/site.css", timeout=5)
    assert css.status_code == 200 and css.headers["Content-Type"] == "text/css"
    assert css.raw.headers.getlist("Cache-Control") == ["public, max-age=31536000, immutable"]
    assert "X-Request-ID" not in css.headers  # never reached the application
    svg = https.get(f"{topology.url}/static/img/logo.svg", timeout=5)
    assert svg.headers["Content-Type"] == "image/svg+xml"
    assert svg.headers["X-Content-Type-Options"] == "nosniff"
    assert https.get(f"{topology.url}/static/../entrypoint.sh", timeout=5).status_code in (400, 404)


def test_create_read_from_the_replica_then_from_the_cache(topology, https, redis_client):
    created = https.post(f"{topology.url}/api/notes", json={"title": "end to end", "body": "x" * 600}, timeout=5)
    assert created.status_code == 201
    note_id = created.json()["id"]
    topology.replica.wait_for_replay(topology.primary.wal_position())
    redis_client.flushall()  # the create wrote the note through to the cache; make the next read miss

    def replica_reads():
        with topology.replica.connect("app") as connection:
            return connection.execute("SELECT tup_returned FROM pg_stat_database WHERE datname = 'app'").fetchone()[0]
    before = replica_reads()
    first = https.get(f"{topology.url}/api/notes/{note_id}", timeout=5)
    assert first.status_code == 200 and first.json()["title"] == "end to end"
    wait_until(lambda: replica_reads() > before, 10, "the replica's statistics showing the read")
    after_first = replica_reads()
    second = https.get(f"{topology.url}/api/notes/{note_id}", timeout=5)
    assert second.json() == first.json()
    assert redis_client.get(f"notes:{note_id}") is not None  # cached by the first read
    listing = https.get(f"{topology.url}/api/notes", headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert listing.headers.get("Content-Encoding") == "gzip"
    assert after_first >= before


def test_request_id_reaches_the_application_log(topology, https):
    response = https.get(f"{topology.url}/api/notes", headers={"X-Request-ID": "e2e-trace-42"}, timeout=5)
    assert response.headers["X-Request-ID"] == "e2e-trace-42"
    wait_until(lambda: "e2e-trace-42" in gunicorn_logs(topology), 10, "the gunicorn access line")
    lines = [json.loads(line) for line in gunicorn_logs(topology).splitlines() if "e2e-trace-42" in line]
    assert any(line["logger"] == "gunicorn.access" and line["path"] == "/api/notes" for line in lines)
    wait_until(lambda: "e2e-trace-42" in nginx_log(topology), 10, "nginx's access line")  # written after the reply
    made = https.get(f"{topology.url}/api/notes", timeout=5).headers["X-Request-ID"]  # none sent: nginx makes one
    assert len(made) == 32
    wait_until(lambda: made in gunicorn_logs(topology), 10, "the generated id in the gunicorn log")


def test_one_instance_killed_idempotent_requests_keep_succeeding(topology, https):
    victim = topology.gunicorns[0]
    victim.kill(signal.SIGKILL)
    try:
        statuses = [https.get(f"{topology.url}/api/notes", timeout=10).status_code for _ in range(40)]
        assert statuses == [200] * 40
    finally:
        victim.start(topology.env)
        victim.wait_ready()


def test_redis_down_shows_in_detailed_health_and_recovers_without_restarting_gunicorn(topology, https):
    pids = [g.process.pid for g in topology.gunicorns]
    topology.redis.stop()
    try:
        down = https.get(f"{topology.url}/health/detailed", timeout=10)
        assert down.status_code == 503 and down.json()["failed"] == ["redis"]
        assert https.get(f"{topology.url}/api/notes", timeout=10).status_code == 200  # uncached, still answering
    finally:
        topology.redis.start()
    wait_until(lambda: https.get(f"{topology.url}/health/detailed", timeout=10).status_code == 200, 30,
               "detailed health after Redis is back")
    assert [g.process.pid for g in topology.gunicorns] == pids


def test_postgresql_restart_the_app_recovers_by_itself(topology, https):
    pids = [g.process.pid for g in topology.gunicorns]
    assert https.post(f"{topology.url}/api/notes", json={"title": "before restart"}, timeout=5).status_code == 201
    topology.primary.restart()
    after = https.post(f"{topology.url}/api/notes", json={"title": "after restart"}, timeout=10)
    assert after.status_code == 201
    assert [g.process.pid for g in topology.gunicorns] == pids
