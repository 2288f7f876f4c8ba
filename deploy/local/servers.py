"""Real PostgreSQL (a primary and streaming replicas) and Redis on free loopback ports in temporary directories.

The tests and the native runner start their servers with this. PostgreSQL refuses to run as root, so when this
process is root the server commands run as the `postgres` user (created by Debian's package).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *command] if os.geteuid() == 0 else command


def _private_dir(prefix: str) -> Path:
    """A temporary directory the server user owns (pytest's own tmp dirs are not traversable by it)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(path, PG_USER, PG_USER)
    return path


def wait_until(check, timeout: float, what: str, interval: float = 0.05):
    """Poll a readiness check until it returns a true value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as err:  # noqa: BLE001 not ready yet
            last_error = err
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout} s" + (f": {last_error}" if last_error else ""))


class PostgresServer:
    """One PostgreSQL instance: a primary (`create`) or a streaming replica of one (`replica_of`)."""

    def __init__(self, directory: Path, port: int, password: str, name: str):
        self.directory, self.port, self.password, self.name = directory, port, password, name
        self.data = directory / "data"
        self.log = directory / "server.log"

    @classmethod
    def create(cls, password: str | None = None, name: str = "primary",
               durable: bool = False, certificate: tuple[bytes, bytes] | None = None) -> PostgresServer:
        """A new primary; with `certificate` (PEM certificate chain, PEM key) it also serves TLS. The superuser's
        password is made for this run unless one is given (never a fixed one a neighbour on the machine knows)."""
        password = password or secrets.token_urlsafe(24)
        server = cls(_private_dir(f"pg-{name}-"), free_port(), password, name)
        pwfile = server.directory / "pwfile"
        pwfile.write_text(password)
        if os.geteuid() == 0:
            shutil.chown(pwfile, PG_USER, PG_USER)
        subprocess.run(_as_pg_user([str(PG_BIN / "initdb"), "-D", str(server.data), "-U", "postgres",
                                    "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                                    "-E", "UTF8", "--no-locale"]),
                       check=True, capture_output=True)
        settings = {"listen_addresses": "'127.0.0.1'", "max_connections": "200", "wal_level": "replica",
                    "max_wal_senders": "10", "hot_standby": "on", "wal_keep_size": "'256MB'"}
        if not durable:  # tests: speed over crash safety
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        if certificate:
            for file_name, pem in zip(("server.crt", "server.key"), certificate, strict=True):
                path = server.data / file_name
                path.write_bytes(pem)
                path.chmod(0o600)
                if os.geteuid() == 0:
                    shutil.chown(path, PG_USER, PG_USER)
            settings.update(ssl="on", ssl_cert_file="'server.crt'", ssl_key_file="'server.key'")
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        server.start()
        return server

    @classmethod
    def replica_of(cls, primary: PostgresServer, name: str = "replica") -> PostgresServer:
        server = cls(_private_dir(f"pg-{name}-"), free_port(), primary.password, name)
        env = {**os.environ, "PGPASSWORD": primary.password}
        subprocess.run(_as_pg_user([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                                    "-U", "postgres", "-D", str(server.data), "-R", "-X", "stream",
                                    "--checkpoint=fast"]),
                       check=True, capture_output=True, env=env)
        server.start()
        return server

    def start(self) -> None:
        # pg_ctl -w waits until the server accepts connections: the readiness check.
        subprocess.run(_as_pg_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                                    "-t", "60", "-o", f"-p {self.port} -k {self.directory}", "start"]),
                       check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(_as_pg_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                           check=False, capture_output=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", autocommit: bool = True):
        import psycopg

        return psycopg.connect(self.url(database), autocommit=autocommit, connect_timeout=5)

    def create_database(self, name: str, owner: str | None = None) -> None:
        with self.connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))

    def create_master(self, user: str, password: str, database: str) -> None:
        """A master login as RDS makes one: not a superuser, but CREATEROLE and CREATEDB, owning the application's
        database (RDS's rds_superuser has more; the roles command must need no more than this)."""
        with self.connect() as connection:
            if not connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone():
                connection.execute(f'CREATE ROLE "{user}" LOGIN CREATEROLE CREATEDB PASSWORD \'{password}\'')
        self.create_database(database, owner=user)

    def wal_position(self) -> str:
        with self.connect() as connection:
            return connection.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]

    def wait_for_replay(self, lsn: str, timeout: float = 30) -> None:
        """A replica: wait until it has replayed the primary's WAL up to `lsn`."""
        def caught_up():
            with self.connect() as connection:
                return connection.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]
        wait_until(caught_up, timeout, f"replica {self.name} replaying to {lsn}")


class RedisServer:
    """A Redis instance with a password, no persistence; with `certificate` (PEM certificate chain, PEM key, PEM CA)
    it speaks TLS only, as ElastiCache with in-transit encryption does."""

    def __init__(self, password: str | None = None, port: int | None = None,
                 certificate: tuple[bytes, bytes, bytes] | None = None):
        self.password = password or secrets.token_urlsafe(24)  # made for this run unless given
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="redis-"))
        self.process: subprocess.Popen | None = None
        self.tls = certificate is not None
        if certificate:
            for file_name, pem in zip(("server.crt", "server.key", "ca.crt"), certificate, strict=True):
                (self.directory / file_name).write_bytes(pem)

    def start(self) -> RedisServer:
        listen = ["--port", str(self.port)]
        if self.tls:
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                      "--tls-cert-file", str(self.directory / "server.crt"),
                      "--tls-key-file", str(self.directory / "server.key"),
                      "--tls-ca-cert-file", str(self.directory / "ca.crt")]
        self.process = subprocess.Popen(
            ["redis-server", *listen, "--bind", "127.0.0.1", "--requirepass", self.password,
             "--dir", str(self.directory), "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 15, f"redis on {self.port}")
        return self

    def client(self, password: str | None = None):
        """A client for the tests' own checks (is it up, what does it hold): over TLS without verifying, which is
        the application's business and what its tests check."""
        import redis

        tls = {"ssl": True, "ssl_cert_reqs": "none", "ssl_check_hostname": False} if self.tls else {}
        return redis.Redis(port=self.port, password=password or self.password, socket_timeout=0.5, **tls)

    def ping(self) -> bool:
        return self.client().ping()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"
