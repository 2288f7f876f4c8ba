"""docker-compose.yml brought up for real: the same file, with an override that only moves it onto this machine's
network (every service on the host's network at free loopback ports, the service names resolving to loopback) and
swaps the three official images no registry here serves (postgres, redis, nginx) for stand-ins made from Debian's
packages (tests/container/stand_ins). The application's services run the image under test, built from app/.

What an override cannot do is remove, so the file runs from a copy without two things this machine's tools refuse
(`for_this_machine`): nginx's published ports (meaningless and refused on the host's network) and the top-level
`name:` (Debian 12's docker-compose 1.29 does not know it; the tests name the project themselves)."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from deploy.local.servers import free_port, wait_until
from deploy.nginx.render import compose_site
from tests.images import LABEL, build_from_base, docker

ROOT = Path(__file__).resolve().parents[2]
STAND_INS = Path(__file__).with_name("stand_ins")


@functools.cache
def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin is installed, else Debian 12's docker-compose 1.29."""
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return ["docker", "compose"] if plugin.returncode == 0 else [shutil.which("docker-compose") or "docker-compose"]


SECRETS = {"SECRET_KEY": "compose-test-" + "k" * 40, "POSTGRES_PASSWORD": "compose-master-password",
           "DATABASE_OWNER_PASSWORD": "compose-owner-password", "DATABASE_RUNTIME_PASSWORD": "compose-runtime-password",
           "REDIS_PASSWORD": "compose-redis-password", "REPLICATION_PASSWORD": "compose-replication-password"}


def override(ports: dict[str, int], images: dict[str, str], directory: Path, base: dict) -> dict:
    """What changes for this machine, and nothing else."""
    host = {"network_mode": "host"}
    app = {**host, "image": images["app"], "labels": {LABEL: "compose"}}
    web = {**app, "extra_hosts": ["db:127.0.0.1", "db-replica:127.0.0.1", "redis:127.0.0.1"],
           "healthcheck": {"interval": "1s"}}
    return {"services": {
        "db": {**host, "image": images["postgres"], "environment": {"PGPORT": str(ports["db"])},
               "command": [*base["services"]["db"]["command"], "-c", "listen_addresses=127.0.0.1"]},
        "db-replica": {**host, "image": images["postgres"], "extra_hosts": ["db:127.0.0.1"],
                       "environment": {"PGPORT": str(ports["db-replica"]), "PRIMARY_PORT": str(ports["db"])},
                       "command": ["-c", "listen_addresses=127.0.0.1"], "healthcheck": {"interval": "1s"}},
        "redis": {**host, "image": images["redis"],
                  "command": ["sh", "-c", f"exec redis-server --bind 127.0.0.1 --port {ports['redis']} "
                              "--requirepass \"$$REDIS_PASSWORD\" --save '' --appendonly no"],
                  "healthcheck": {"test": ["CMD-SHELL", f"redis-cli -p {ports['redis']} --no-auth-warning "
                                           "-a \"$$REDIS_PASSWORD\" ping | grep -q PONG"]}},
        "migrate": {**app, "extra_hosts": ["db:127.0.0.1"], "environment": {"DATABASE_PORT": str(ports["db"])}},
        **{name: {**web, "environment": {"DATABASE_PORT": str(ports["db"]), "REDIS_PORT": str(ports["redis"]),
                                         "DATABASE_REPLICA_HOSTS": f"db-replica:{ports['db-replica']}",
                                         "PORT": str(ports[name]), "BIND_HOST": "127.0.0.1"}}
           for name in ("web1", "web2")},
        "nginx": {**host, "image": images["nginx"],
                  "volumes": [f"{directory / 'nginx.conf'}:/etc/nginx/nginx.conf:ro",
                              f"{directory / 'certs'}:/etc/nginx/certs:ro"]},
    }}


def for_this_machine(compose_file: Path) -> dict:
    """The compose file without published ports (Docker refuses them with network_mode: host) and without `name:`
    (compose 1.29 refuses it)."""
    document = yaml.safe_load(compose_file.read_text())
    document.pop("name", None)
    for service in document["services"].values():
        service.pop("ports", None)
    return document


class Compose:
    def __init__(self, project: str, files: list[Path], env_file: Path, env: dict[str, str]):
        self.project, self.files, self.env_file, self.env = project, files, env_file, env

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        command = [*compose_command(), "--project-name", self.project, "--project-directory", str(ROOT),
                   "--env-file", str(self.env_file),
                   *(arg for path in self.files for arg in ("--file", str(path))), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command[-len(args):])} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def containers(self) -> list[str]:
        return docker("ps", "--all", "--quiet", "--filter",
                      f"label=com.docker.compose.project={self.project}").stdout.split()

    def leftovers(self) -> list[str]:
        """Containers, volumes and networks of this project that still exist."""
        found = self.containers()
        for kind in ("volume", "network"):
            found += docker(kind, "ls", "--quiet", "--filter",
                            f"label=com.docker.compose.project={self.project}").stdout.split()
        return found

    def logs(self, service: str) -> str:
        return self("logs", "--no-color", service).stdout


@pytest.fixture(scope="module")
def topology(app_image, base_image, test_ca, tmp_path_factory):
    directory = tmp_path_factory.mktemp("compose")
    ports = {name: free_port() for name in ("db", "db-replica", "redis", "web1", "web2", "http", "https")}
    images = {"app": app_image, **{name: build_from_base(STAND_INS / f"{name}.Dockerfile", base=base_image)
                                   for name in ("postgres", "redis", "nginx")}}
    (directory / "certs").mkdir()
    leaf = test_ca.issue_cert("localhost")
    (directory / "certs" / "fullchain.pem").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    (directory / "certs" / "privkey.pem").write_bytes(leaf.private_key_pem.bytes())
    # The committed compose.conf, rendered with this machine's addresses instead of the service names and ports.
    site = dataclasses.replace(compose_site(), upstreams=[f"127.0.0.1:{ports['web1']}", f"127.0.0.1:{ports['web2']}"],
                               http_listen=f"127.0.0.1:{ports['http']}", https_listen=f"127.0.0.1:{ports['https']}",
                               https_port=ports["https"])
    (directory / "nginx.conf").write_text(site.render())
    base = for_this_machine(ROOT / "docker-compose.yml")
    (directory / "docker-compose.yml").write_text(yaml.safe_dump(base))
    (directory / "override.yml").write_text(yaml.safe_dump(override(ports, images, directory, base)))
    # The secrets as .env would hold them, and nothing from a developer's own .env in the project folder.
    (directory / ".env").write_text("".join(f"{key}={value}\n" for key, value in SECRETS.items()))
    compose = Compose(f"flaskawstest{uuid.uuid4().hex[:8]}",
                      [directory / "docker-compose.yml", directory / "override.yml"], directory / ".env",
                      {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in SECRETS})
    ca_file = directory / "ca.pem"
    test_ca.cert_pem.write_to_path(str(ca_file))
    try:
        compose("up", "--detach", "--no-build", timeout=600)
        https = requests.Session()
        https.verify = str(ca_file)
        https.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
        url = f"https://localhost:{ports['https']}"
        wait_until(lambda: https.get(f"{url}/health", timeout=2).status_code == 200, 60, "nginx answering")
        # A write token, made as the README tells an operator: `flask tokens create` in a web container.
        made = compose("exec", "-T", "web1", "flask", "--app", "webapp", "tokens", "create", "tests")
        token = made.stdout.strip().splitlines()[-1]
        https.headers["Authorization"] = f"Bearer {token}"
        yield {"compose": compose, "url": url, "http": f"http://localhost:{ports['http']}", "https": https,
               "ports": ports}
    finally:
        down = compose("down", "--volumes", "--remove-orphans", check=False)
        left = compose.leftovers()
        assert down.returncode == 0 and not left, f"down left {left}: {down.stderr}"


def test_http_redirects_to_https(topology):
    response = requests.get(f"{topology['http']}/api/notes?page=2", allow_redirects=False, timeout=5)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://localhost:{topology['ports']['https']}/api/notes?page=2"


def test_security_headers_once_each_from_nginx(topology):
    response = topology["https"].get(f"{topology['url']}/health", timeout=5)
    assert response.status_code == 200 and response.headers["Server"] == "nginx"
    for name, value in (("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
                        ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY")):
        assert response.raw.headers.getlist(name) == [value], name


def test_static_files_from_nginx_with_immutable_caching(topology):
    css = topology["https"].get(f"{topology['url']}/static/css/site.css", timeout=5)
    assert css.status_code == 200 and css.headers["Content-Type"] == "text/css"
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def database(topology, service: str):
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=topology["ports"][service], dbname="app", user="postgres",
                           password=SECRETS["POSTGRES_PASSWORD"], autocommit=True, connect_timeout=5)


def test_a_write_goes_to_the_primary_and_is_read_back_from_the_replica(topology):
    https, url = topology["https"], topology["url"]
    created = https.post(f"{url}/api/notes", json={"title": "through compose", "body": "z" * 100}, timeout=5)
    assert created.status_code == 201, created.text
    with database(topology, "db") as primary:
        lsn = primary.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
    with database(topology, "db-replica") as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        wait_until(lambda: replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0],
                   30, "the replica replaying the write")
        topology["compose"]("exec", "-T", "redis", "sh", "-c", f"redis-cli -p {topology['ports']['redis']} "
                            "--no-auth-warning -a \"$REDIS_PASSWORD\" FLUSHALL")  # the next read misses the cache

        def scans() -> int:
            """Scans of the notes table on the replica (a backend reports its counts once idle, within 10 s)."""
            return replica.execute("SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                                   "WHERE relname = 'notes'").fetchone()[0]
        before = scans()
        read = https.get(f"{url}/api/notes/{created.json()['id']}", timeout=5)
        assert read.status_code == 200 and read.json()["title"] == "through compose"
        wait_until(lambda: scans() > before, 20, "the replica's statistics showing the read", interval=0.5)


def test_requests_are_balanced_across_both_web_containers(topology):
    https, url = topology["https"], topology["url"]
    ids = [f"compose-balance-{n}" for n in range(20)]
    for request_id in ids:
        assert https.get(f"{url}/api/notes", headers={"X-Request-ID": request_id}, timeout=5).status_code == 200
    served = {}
    for service in ("web1", "web2"):
        lines = [json.loads(line.split("|", 1)[1]) for line in topology["compose"].logs(service).splitlines()
                 if "|" in line and line.split("|", 1)[1].strip().startswith("{")]
        served[service] = {line.get("request_id") for line in lines if line.get("logger") == "gunicorn.access"}
    assert served["web1"] & set(ids) and served["web2"] & set(ids), served
    assert (served["web1"] | served["web2"]) >= set(ids)


def test_the_web_containers_serve_as_the_runtime_role(topology):
    done = topology["compose"]("exec", "-T", "db", "psql", "-At", "-U", "postgres", "-d", "app", "-c",
                               "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'app' "
                               "AND usename <> 'postgres'")
    assert done.stdout.split() == ["app_runtime"]
    with database(topology, "db-replica") as replica:
        users = replica.execute("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'app' "
                                "AND usename <> 'postgres'").fetchall()
    assert users == [("app_runtime",)]


def test_the_replication_role_script_can_run_again_on_an_existing_database(topology):
    """The upgrade path docs/operations.md gives for a volume made before the replica: the script, run again by
    hand, changes nothing and the replica keeps streaming."""
    compose = topology["compose"]
    compose("exec", "-T", "db", "sh", "/docker-entrypoint-initdb.d/replication-role.sh")
    with database(topology, "db") as primary:
        hba = primary.execute("SELECT count(*) FROM pg_hba_file_rules WHERE 'replicator' = ANY(user_name)").fetchone()
        assert hba[0] == 1
        assert primary.execute("SELECT count(*) FROM pg_stat_replication WHERE usename = 'replicator'"
                               ).fetchone()[0] == 1
