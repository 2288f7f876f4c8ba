"""The real entrypoint and Gunicorn config, serving the app against real PostgreSQL, and a graceful SIGTERM."""

import importlib.util
import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from deploy.local.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"


def load_conf(monkeypatch, **env):
    for key in ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_KEEPALIVE", "GUNICORN_TIMEOUT",
                "GUNICORN_GRACEFUL_TIMEOUT", "GUNICORN_MAX_REQUESTS", "FORWARDED_ALLOW_IPS", "GUNICORN_CONTROL_SOCKET"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf", APP / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_defaults(monkeypatch):
    conf = load_conf(monkeypatch)
    assert conf.bind == "0.0.0.0:8000" and conf.worker_class == "gthread"
    assert conf.workers == max(2, os.cpu_count()) and conf.threads == 4
    assert conf.keepalive == 75 > 60  # above the ALB's idle timeout
    assert (conf.timeout, conf.graceful_timeout) == (30, 25)
    assert conf.max_requests == 0 and conf.max_requests_jitter == 0  # no recycling (docs/ARCHITECTURE.md)
    assert conf.worker_tmp_dir == "/dev/shm" and conf.preload_app is False
    assert conf.accesslog == "-" and conf.errorlog == "-"
    assert conf.forwarded_allow_ips == "127.0.0.1,::1"
    # No control socket: its default place is under the read-only working directory (tests/container found it).
    assert conf.control_socket_disable is True
    assert conf.logger_class == "webapp.access_log.JsonLogger"


def test_worker_recycling_only_when_asked_with_jitter(monkeypatch):
    conf = load_conf(monkeypatch, GUNICORN_MAX_REQUESTS="50000")
    assert (conf.max_requests, conf.max_requests_jitter) == (50000, 5000)


def test_the_control_socket_only_where_asked(monkeypatch):
    conf = load_conf(monkeypatch, GUNICORN_CONTROL_SOCKET="/tmp/gunicorn.ctl")
    assert (conf.control_socket, conf.control_socket_disable) == ("/tmp/gunicorn.ctl", False)


def test_config_from_the_environment(monkeypatch):
    conf = load_conf(monkeypatch, PORT="9000", WEB_CONCURRENCY="3", GUNICORN_THREADS="8", GUNICORN_KEEPALIVE="90",
                     GUNICORN_TIMEOUT="60", GUNICORN_GRACEFUL_TIMEOUT="20", FORWARDED_ALLOW_IPS="*")
    assert conf.bind == "0.0.0.0:9000" and (conf.workers, conf.threads, conf.keepalive) == (3, 8, 90)
    assert (conf.timeout, conf.graceful_timeout, conf.forwarded_allow_ips) == (60, 20, "*")


@pytest.fixture
def served(postgres, tmp_path):
    """The migration step (the entrypoint running `flask db prepare` with the master and owner logins), then the
    entrypoint serving with the runtime login, on a fresh database."""
    primary, _ = postgres
    primary.create_master("gunicorn_admin", "admin-password-1", "gunicorn_test")
    base_env = {**os.environ, "APP_ENV": "staging", "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(primary.port),
                "DATABASE_NAME": "gunicorn_test", "PYTHONPATH": str(APP),
                "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"}
    for key in ("REDIS_URL", "DATABASE_REPLICA_HOSTS"):
        base_env.pop(key, None)
    log = tmp_path / "gunicorn.log"
    migrate = {**base_env, "DATABASE_USER": "gunicorn_owner", "DATABASE_PASSWORD": "owner-password-1",
               "DATABASE_MASTER_USER": "gunicorn_admin", "DATABASE_MASTER_PASSWORD": "admin-password-1",
               "DATABASE_RUNTIME_USER": "gunicorn_runtime", "DATABASE_RUNTIME_PASSWORD": "runtime-password-1"}
    with log.open("w") as out:
        subprocess.run([str(APP / "entrypoint.sh"), "flask", "--app", "webapp", "db", "prepare"], env=migrate,
                       stdout=out, stderr=subprocess.STDOUT, check=True, timeout=120)
    port = free_port()
    env = {**base_env, "SECRET_KEY": "s" * 48, "DATABASE_USER": "gunicorn_runtime",
           "DATABASE_PASSWORD": "runtime-password-1", "PORT": str(port), "BIND_HOST": "127.0.0.1",
           "WEB_CONCURRENCY": "2", "GUNICORN_GRACEFUL_TIMEOUT": "20"}
    # A write token, made the way an operator makes one: the CLI through the entrypoint, with the runtime login.
    made = subprocess.run([str(APP / "entrypoint.sh"), "flask", "--app", "webapp", "tokens", "create", "tests"],
                          env=env, capture_output=True, text=True, check=True, timeout=60)
    token = made.stdout.strip().splitlines()[-1]
    with log.open("a") as out:
        process = subprocess.Popen([str(APP / "entrypoint.sh")], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{base}/health", timeout=1).status_code == 200, 60, "gunicorn")
        yield process, base, log, primary, {"Authorization": f"Bearer {token}"}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_serves_health_and_the_api_with_json_access_logs(served):
    process, base, log, _, token = served
    assert requests.get(f"{base}/health", timeout=5).json() == {"status": "ok"}
    created = requests.post(f"{base}/api/notes", json={"title": "via gunicorn"}, timeout=5,
                            headers={"X-Request-ID": "gunicorn-test-1", **token})
    assert created.status_code == 201 and created.headers["X-Request-ID"] == "gunicorn-test-1"
    assert requests.get(f"{base}/api/notes/{created.json()['id']}", timeout=5).json()["title"] == "via gunicorn"

    def access_lines():
        return [json.loads(line) for line in log.read_text().splitlines()
                if line.startswith("{") and '"gunicorn.access"' in line]
    # The access line is written after the response has gone out: wait for it, do not race it.
    wait_until(lambda: any(a["request_id"] == "gunicorn-test-1" and a["status"] == 201 for a in access_lines()),
               10, "the access log line of the create")
    assert "Running upgrade 0001 -> 0002" in log.read_text()
    # Gunicorn's access log is built with json.dumps: a backslash or a quote cannot break the line.
    requests.get(f"{base}/health%5C%22x", timeout=5, headers={"User-Agent": 'evil\\agent "quoted"'})
    wait_until(lambda: any(line["user_agent"] == 'evil\\agent "quoted"' for line in access_lines()), 10,
               "the access log line with the quoted User-Agent")


def test_the_server_recovers_by_itself_after_the_primary_restarts(served):
    process, base, log, primary, token = served
    assert requests.post(f"{base}/api/notes", json={"title": "before"}, timeout=5, headers=token).status_code == 201
    primary.restart()
    after = requests.post(f"{base}/api/notes", json={"title": "after"}, timeout=10, headers=token)
    assert after.status_code == 201 and requests.get(f"{base}/api/notes", timeout=5).json()["total"] == 2
    assert process.poll() is None  # the same Gunicorn, never restarted


def test_sigterm_lets_an_in_flight_request_finish(served):
    process, base, log, primary, token = served
    requests.post(f"{base}/api/notes", json={"title": "before"}, timeout=5, headers=token).raise_for_status()
    with primary.connect("gunicorn_test", autocommit=False) as blocker:
        # Hold the table: the next read waits on the lock, an in-flight request for as long as we like.
        blocker.execute("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")
        result = {}
        reader = threading.Thread(target=lambda: result.update(
            response=requests.get(f"{base}/api/notes", timeout=60)))
        reader.start()

        def reader_is_waiting():
            with primary.connect("gunicorn_test") as watcher:
                return watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND query LIKE '%%notes%%'").fetchone()[0]
        wait_until(reader_is_waiting, 30, "the request blocked on the lock")
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: "Handling signal: term" in log.read_text(), 30, "gunicorn's SIGTERM handling")
        assert process.poll() is None  # still draining
        blocker.rollback()  # the request may now finish
    reader.join(timeout=60)
    assert result["response"].status_code == 200 and result["response"].json()["total"] == 1
    assert process.wait(timeout=30) == 0


def test_the_access_line_also_goes_to_a_log_file_when_one_is_configured(tmp_path):
    """Straight to stdout in the containers; through logging anywhere else (accesslog = a file)."""
    import datetime
    import types

    from gunicorn.config import Config
    from webapp.access_log import JsonLogger

    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    logger = JsonLogger(cfg)
    response = types.SimpleNamespace(status_code=201, sent=17, headers=[("X-Request-ID", "file-1")])
    environ = {"REMOTE_ADDR": "10.0.0.1", "REQUEST_METHOD": "POST", "PATH_INFO": "/api/notes", "QUERY_STRING": "",
               "HTTP_USER_AGENT": 'a "quoted" agent\\'}
    logger.access(response, None, environ, datetime.timedelta(microseconds=1500))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = json.loads((tmp_path / "access.log").read_text())
    assert line == {**line, "status": 201, "bytes": 17, "duration_us": 1500, "request_id": "file-1",
                    "path": "/api/notes", "user_agent": 'a "quoted" agent\\', "logger": "gunicorn.access"}
