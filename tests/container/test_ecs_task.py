"""The image run as the prod service's task definition runs it (tests/ecs_task.py): the migration step, then the
server on a read-only root with the task's /tmp, an init process and the plan's health check, against PostgreSQL
(TLS verify-full, primary + replica), Redis over TLS and Secrets Manager on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from deploy.local.servers import free_port, wait_until
from infra.components.task import CONTAINER
from tests.images import docker

MAX_START_SECONDS = 120


def inspect(name: str) -> dict:
    return json.loads(docker("inspect", name).stdout)[0]


def json_lines(output: str) -> list[dict]:
    """Every line the container wrote, parsed: one that is not JSON fails the test."""
    lines = [line for line in output.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a log line that is not JSON: {line!r}")
    return parsed


@pytest.fixture(scope="module")
def server(service_task, migrated):
    """The serving container, started once the migration step succeeded, healthy by its own health check."""
    port = free_port()
    name = service_task.start(CONTAINER, port=port)

    def healthy() -> bool:
        state = inspect(name)["State"]
        if not state["Running"]:
            raise AssertionError(f"the container exited ({state['ExitCode']}):\n{logs(name)}")
        return state["Health"]["Status"] == "healthy"

    wait_until(healthy, MAX_START_SECONDS, f"{name} healthy", interval=0.5)
    # A write token, made as an operator makes one in a one-off task: the CLI through the image's entrypoint.
    made = docker("exec", name, "/app/entrypoint.sh", "flask", "--app", "webapp", "tokens", "create", "tests")
    token = made.stdout.strip().splitlines()[-1]  # the last line; the lines before are the app's JSON logs
    return {"name": name, "url": f"http://127.0.0.1:{port}", "definition": service_task.definition(CONTAINER),
            "auth": {"Authorization": f"Bearer {token}"}}


def unread_bytes(server_port: int, client_port: int) -> int | None:
    """Bytes the kernel holds for the server's side of this loopback connection that no process has read yet
    (/proc/net/tcp's rx_queue; the containers share the host's network)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return int(queues.split(":")[1], 16)
    return None


def logs(name: str) -> str:
    done = docker("logs", name)
    return done.stdout + done.stderr


def test_the_migration_step_makes_the_roles_and_migrates_over_verified_tls(migrated, stand_in):
    """A command's report is text for the operator reading the task's log (`roles: created role ...`); what the
    application logs is JSON; nothing is an error."""
    output = migrated.stdout + migrated.stderr
    assert "roles: created role app_runtime" in output
    assert "Traceback" not in output and '"level": "ERROR"' not in output
    with stand_in.primary.connect(stand_in.database) as connection:
        roles = {row[0] for row in connection.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'app_%'")}
        assert {"app_owner", "app_runtime", "app_backup", "app_drill"} <= roles
        assert connection.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1


def test_turns_healthy_by_its_own_check_and_serves_the_api(server, stand_in):
    health = requests.get(f"{server['url']}/health", timeout=5)
    assert health.status_code == 200
    created = requests.post(f"{server['url']}/api/notes", json={"title": "from the image", "body": "x"}, timeout=5,
                            headers=server["auth"])
    assert created.status_code == 201, created.text
    note = created.json()
    stand_in.replica.wait_for_replay(stand_in.primary.wal_position())
    read = requests.get(f"{server['url']}/api/notes/{note['id']}", timeout=5)
    assert read.status_code == 200 and read.json()["title"] == "from the image"
    detailed = requests.get(f"{server['url']}/health/detailed", timeout=5, headers=server["auth"]).json()
    assert detailed["status"] == "ok", detailed


def test_every_connection_to_the_database_is_tls_as_the_runtime_role(server, stand_in):
    requests.get(f"{server['url']}/api/notes", timeout=5).raise_for_status()
    with stand_in.primary.connect() as connection:
        rows = connection.execute("SELECT a.usename, s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                                  "WHERE a.datname = %s AND a.usename IS NOT NULL AND a.usename <> 'postgres'",
                                  (stand_in.database,)).fetchall()
    assert rows and all(ssl for _, ssl in rows), rows
    assert {user for user, _ in rows} == {"app_runtime"}


def test_runs_as_the_image_user_on_a_read_only_root_with_an_init_process(server):
    container = inspect(server["name"])
    assert container["Config"]["User"] == "10001:10001"
    assert container["HostConfig"]["ReadonlyRootfs"] is True and container["HostConfig"]["Init"] is True
    assert docker("exec", server["name"], "id", "-u").stdout.strip() == "10001"
    refused = docker("exec", server["name"], "touch", "/app/written", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    assert docker("exec", server["name"], "touch", "/tmp/written").returncode == 0


def test_logs_are_json_without_an_error_at_start(server):
    lines = json_lines(logs(server["name"]))
    assert [line for line in lines if line.get("level") in ("ERROR", "CRITICAL")] == []
    assert any(line["logger"] == "gunicorn.error" and line["message"].startswith("Starting gunicorn")
               for line in lines)
    assert any(line["logger"] == "webapp" and line["message"] == "app ready" for line in lines)


def test_docker_stop_finishes_the_request_in_flight_and_exits_0(server):
    """ECS stops a task with SIGTERM, then SIGKILL after stopTimeout: a request being received when the signal
    arrives is still answered, and Gunicorn exits 0 well within the timeout."""
    body = json.dumps({"title": "in flight during the stop", "body": "y" * 2000}).encode()
    host, port = server["url"].removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)), timeout=30)
    authorization = server["auth"]["Authorization"].encode()
    client.sendall(b"POST /api/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                   b"Authorization: " + authorization + b"\r\n"
                   b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body[:100])
    # The worker is inside the request once it has read what was sent: the server side's receive queue is empty.
    wait_until(lambda: unread_bytes(int(port), client.getsockname()[1]) == 0, 10, "the request being read",
               interval=0.05)
    stop_timeout = server["definition"]["stopTimeout"]
    assert inspect(server["name"])["Config"]["StopTimeout"] == stop_timeout  # what `docker stop` waits, like ECS
    started = time.monotonic()
    stopping = threading.Thread(target=docker, args=("stop", server["name"]))
    stopping.start()
    wait_until(lambda: "Handling signal: term" in logs(server["name"]), 10, "Gunicorn told to stop", interval=0.1)
    client.sendall(body[100:])
    answer = b""
    while chunk := client.recv(65536):
        answer += chunk
    client.close()
    stopping.join(timeout=stop_timeout + 10)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    state = inspect(server["name"])["State"]
    assert state["Running"] is False and state["ExitCode"] == 0, state
    assert elapsed < stop_timeout, f"stopped after {elapsed:.1f} s; ECS would have killed it at {stop_timeout} s"
