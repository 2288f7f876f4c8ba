"""The self-hosted topology on this machine, without Docker: PostgreSQL primary + streaming replica, Redis with a
password, the migration step (the real entrypoint running `flask db prepare`: roles with the master login, then the
migration as the owner), N Gunicorn instances started by the real entrypoint with the runtime login, and nginx with
a self-signed certificate in front, all on free loopback ports. The master login is made as RDS makes one (not a
superuser), and every login has a password generated for this run.

The native runner (`make local`), the end-to-end tests and the benchmark use it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from deploy.local.servers import PostgresServer, RedisServer, free_port, wait_until
from deploy.nginx.render import NginxSite

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
NGINX_USER = "www-data"  # nginx's workers drop to it when the master runs as root, as in any install
LOGINS = ("admin", "owner", "runtime")  # the master login, the migrations' owner, the one Gunicorn serves with


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "7", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@dataclass
class GunicornInstance:
    port: int
    log: Path
    process: subprocess.Popen | None = None

    def start(self, env: dict) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen([str(APP / "entrypoint.sh")], env={**env, "PORT": str(self.port)},
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{self.port}/health", timeout=1).ok, timeout,
                   f"gunicorn on {self.port}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole instance: the master and its workers (one process group)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process:
            try:  # any worker left behind
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@dataclass
class LocalTopology:
    instances: int = 2
    workers: int = 2
    threads: int = 4
    extra_env: dict = field(default_factory=dict)
    nginx_rate_per_second: int = 20  # nginx's limit_req per client address (tests and benchmarks raise it)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="flask-local-")))

    def start(self) -> LocalTopology:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.primary = PostgresServer.create(durable=True)
        self.replica = PostgresServer.replica_of(self.primary)
        self.redis = RedisServer(password=secrets.token_urlsafe(24)).start()
        self.logins = {kind: (f"app_{kind}", secrets.token_urlsafe(24)) for kind in LOGINS}
        self.primary.create_master(*self.logins["admin"], "app")
        common = {
            **os.environ, "APP_ENV": "production", "DATABASE_HOST": "127.0.0.1",
            "DATABASE_PORT": str(self.primary.port), "DATABASE_NAME": "app",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        self.migrate(common)
        self.env = {
            **common, "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_USER": self.logins["runtime"][0], "DATABASE_PASSWORD": self.logins["runtime"][1],
            "DATABASE_REPLICA_HOSTS": f"127.0.0.1:{self.replica.port}", "REDIS_URL": self.redis.url(),
            "PROXY_COUNT": "1", "FORWARDED_ALLOW_IPS": "127.0.0.1", "BIND_HOST": "127.0.0.1",
            "WEB_CONCURRENCY": str(self.workers), "GUNICORN_THREADS": str(self.threads),
            **self.extra_env,
        }
        self.token = self.create_token("local")
        self.gunicorns = [GunicornInstance(free_port(), self.directory / f"gunicorn-{i + 1}.log")
                          for i in range(self.instances)]
        for instance in self.gunicorns:
            instance.start(self.env)
        for instance in self.gunicorns:
            instance.wait_ready()

        nginx_dir = self.directory / "nginx"
        nginx_dir.mkdir()
        self.certificate, key = self_signed_certificate(nginx_dir)
        self.http_port, self.https_port = free_port(), free_port()
        site = NginxSite(upstreams=[f"127.0.0.1:{g.port}" for g in self.gunicorns],
                         certificate=str(self.certificate), certificate_key=str(key),
                         static_root=str(APP / "webapp" / "static"), runtime=str(nginx_dir),
                         http_listen=f"127.0.0.1:{self.http_port}", https_listen=f"127.0.0.1:{self.https_port}",
                         https_port=self.https_port, access_log=str(nginx_dir / "access.log"),
                         error_log=str(nginx_dir / "error.log"), rate_per_second=self.nginx_rate_per_second,
                         user=NGINX_USER if os.geteuid() == 0 else None)
        self.nginx_conf = nginx_dir / "nginx.conf"
        self.nginx_conf.write_text(site.render())
        for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):  # written by the workers
            (nginx_dir / temp).mkdir()
            if os.geteuid() == 0:
                shutil.chown(nginx_dir / temp, NGINX_USER)
        os.chmod(self.directory, 0o755)
        self.nginx = subprocess.Popen(["nginx", "-p", str(nginx_dir), "-c", str(self.nginx_conf), "-g",
                                       "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: requests.get(f"{self.url}/health", verify=str(self.certificate), timeout=1).ok, 30,
                   "nginx")
        self._write_state()

    def migrate(self, common: dict) -> None:
        """The release's migration step, once, before any Gunicorn: roles with the master login, then the migration
        as the owner (the compose file's `migrate` service, the ECS task's migration container)."""
        env = {**common, "DATABASE_USER": self.logins["owner"][0], "DATABASE_PASSWORD": self.logins["owner"][1],
               "DATABASE_MASTER_USER": self.logins["admin"][0], "DATABASE_MASTER_PASSWORD": self.logins["admin"][1],
               "DATABASE_RUNTIME_USER": self.logins["runtime"][0],
               "DATABASE_RUNTIME_PASSWORD": self.logins["runtime"][1]}
        log = self.directory / "migrate.log"
        with log.open("w") as out:
            done = subprocess.run([str(APP / "entrypoint.sh"), "flask", "--app", "webapp", "db", "prepare"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"the migration step failed (exit {done.returncode}):\n{log.read_text()[-2000:]}")

    def create_token(self, name: str) -> str:
        """An API token for writes, made as an operator makes one: `flask tokens create` through the entrypoint, with
        the runtime login."""
        done = subprocess.run([str(APP / "entrypoint.sh"), "flask", "--app", "webapp", "tokens", "create", name],
                              env=self.env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"flask tokens create failed (exit {done.returncode}): {done.stderr[-2000:]}")
        return done.stdout.strip().splitlines()[-1]

    @property
    def auth(self) -> dict:
        """The header that authorizes a write."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://localhost:{self.http_port}"

    def describe(self) -> str:
        lines = [f"  {self.url}  (nginx, HTTPS, self-signed: {self.certificate})",
                 f"  {self.http_url}  (redirects to HTTPS)"]
        lines += [f"  http://127.0.0.1:{g.port}  (gunicorn {i + 1}, log {g.log})" for i, g in enumerate(self.gunicorns)]
        users = ", ".join(user for user, _ in self.logins.values())
        lines += [f"  postgresql://127.0.0.1:{self.primary.port}/app  (primary; logins {users}, passwords in "
                  f"{self.directory / 'state.json'})",
                  f"  postgresql://127.0.0.1:{self.replica.port}/app  (streaming replica)",
                  f"  redis://127.0.0.1:{self.redis.port}  (password in {self.directory / 'state.json'})",
                  f"  writes need Authorization: Bearer <token>: api_token in {self.directory / 'state.json'}"]
        return "\n".join(lines)

    def _write_state(self) -> None:
        state = {"directory": str(self.directory), "nginx_pid": self.nginx.pid,
                 "gunicorn_pids": [g.process.pid for g in self.gunicorns], "redis_pid": self.redis.process.pid,
                 "postgres_dirs": [str(self.replica.directory), str(self.primary.directory)],
                 "redis_dir": str(self.redis.directory), "url": self.url,
                 "redis_password": self.redis.password, "logins": dict(self.logins.values()),
                 "api_token": self.token}
        state_file = self.directory / "state.json"
        state_file.touch(mode=0o600)  # it holds passwords: its owner's alone
        state_file.write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        """Stop everything, front to back; safe to call on a half-started topology."""
        nginx = getattr(self, "nginx", None)
        if nginx and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)  # graceful: finish in-flight requests
            try:
                nginx.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(nginx.pid, signal.SIGKILL)
                nginx.wait(timeout=30)
        for instance in getattr(self, "gunicorns", []):
            instance.stop()
        for name in ("redis", "replica", "primary"):
            server = getattr(self, name, None)
            if server is not None:
                server.destroy()
        shutil.rmtree(self.directory, ignore_errors=True)


def stop_from_state(state_file: Path) -> list[str]:
    """Stop a topology another process started (`make local-down`), from its state file; return what was done."""
    state = json.loads(state_file.read_text())
    done = []
    for pid, sig, name in ([(state["nginx_pid"], signal.SIGQUIT, "nginx")]
                           + [(pid, signal.SIGTERM, "gunicorn") for pid in state["gunicorn_pids"]]
                           + [(state["redis_pid"], signal.SIGTERM, "redis")]):
        try:
            os.kill(pid, sig)
            done.append(f"stopped {name} ({pid})")
        except ProcessLookupError:
            pass
    for pid in state["gunicorn_pids"]:
        try:
            wait_until(lambda pid=pid: not _alive(pid), 60, f"gunicorn {pid} exiting")
        except TimeoutError:
            os.killpg(pid, signal.SIGKILL)
    for directory in state["postgres_dirs"]:
        server = PostgresServer(Path(directory), port=0, password="", name=Path(directory).name)
        if (server.data / "postmaster.pid").exists():
            server.stop()
            done.append(f"stopped postgres ({server.data})")
    for path in [*state["postgres_dirs"], state["redis_dir"], state["directory"]]:
        shutil.rmtree(path, ignore_errors=True)
    return done


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for its parent (the `up` process) to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
