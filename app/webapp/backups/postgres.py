"""The PostgreSQL side of backups: pg_dump and pg_restore run with the password in their environment (never on a
command line), and the table fingerprints the drill compares. Where the database is: webapp.postgres."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile

import psycopg
from psycopg import sql

from webapp.backups import BackupError
from webapp.postgres import Database


def tool_version(tool: str) -> str:
    """`pg_dump --version`, e.g. "pg_dump (PostgreSQL) 15.14"."""
    try:
        return subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise BackupError(f"{tool} is not installed here: install the PostgreSQL client (postgresql-client-15)") \
            from None


@contextlib.contextmanager
def exported_snapshot(database: Database):
    """A read-only repeatable-read transaction whose snapshot pg_dump can share (--snapshot): the dump and the
    fingerprints the drill takes in this transaction see exactly the same rows, whatever is written meanwhile."""
    with database.connect(autocommit=False) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        snapshot = connection.execute("SELECT pg_export_snapshot()").fetchone()[0]
        try:
            yield connection, snapshot
        finally:
            connection.rollback()


class Dump:
    """pg_dump writing the custom format, uncompressed (compression.Compressed does it on every core), to a pipe:
    read from `stdout`, then finish() to learn whether it succeeded."""

    def __init__(self, database: Database, snapshot: str | None = None):
        self.database = database
        self.errors = tempfile.TemporaryFile()
        command = ["pg_dump", "--format=custom", "--compress=0", "--no-password"]
        if snapshot:
            command.append(f"--snapshot={snapshot}")
        try:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.errors,
                                            env=database.libpq_environment())
        except OSError:
            self.errors.close()
            raise BackupError("pg_dump is not installed here: install the PostgreSQL client (postgresql-client-15)") \
                from None

    @property
    def stdout(self):
        return self.process.stdout

    def finish(self) -> None:
        """Wait for pg_dump; raise with its own words if it failed."""
        self.process.stdout.close()
        code = self.process.wait()
        self.errors.seek(0)
        message = self.errors.read().decode(errors="replace").strip()
        self.errors.close()
        if code != 0:
            raise BackupError(f"pg_dump of {self.database} failed (exit {code}): {last_lines(message)}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self.errors.close()


def restore(database: Database, dump_path: str, clean: bool) -> None:
    """pg_restore in one transaction: a dump that fails half way leaves the target as it was."""
    command = ["pg_restore", "--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges",
               "--no-password", f"--dbname={database.name}", dump_path]
    if clean:
        command[1:1] = ["--clean", "--if-exists"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=database.libpq_environment())
    except OSError:
        raise BackupError("pg_restore is not installed here: install the PostgreSQL client (postgresql-client-15)") \
            from None
    if result.returncode != 0:
        raise BackupError(f"pg_restore into {database} failed (exit {result.returncode}), nothing was restored: "
                          f"{last_lines(result.stderr)}")


def user_tables(connection: psycopg.Connection) -> list[tuple[str, str]]:
    """(schema, table) for every table outside the system schemas, sorted."""
    return connection.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1, 2").fetchall()


# Each row's text form hashed (md5, as two 64-bit halves) and the halves summed exactly: order-independent, one
# pass, constant memory on the server, whatever the table's size (a string_agg would sort every hash and hit the
# 1 GB value limit at about 33 million rows).
FINGERPRINT = ("SELECT count(*), coalesce(sum(('x' || left(h, 16))::bit(64)::bigint::numeric), 0) || ':' || "
               "coalesce(sum(('x' || right(h, 16))::bit(64)::bigint::numeric), 0) "
               "FROM (SELECT md5(t::text) AS h FROM {} t) AS rows")


def fingerprints(connection: psycopg.Connection) -> dict[str, tuple[int, str]]:
    """Per table (schema.table): row count and an order-independent checksum of every row's text form."""
    return {f"{schema}.{table}": tuple(connection.execute(
        sql.SQL(FINGERPRINT).format(sql.Identifier(schema, table))).fetchone())
        for schema, table in user_tables(connection)}


def row_counts(connection: psycopg.Connection, only: set[str] | None = None) -> dict[str, int]:
    """Rows per table (schema.table), of every table or of those in `only`."""
    return {f"{schema}.{table}": connection.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))).fetchone()[0]
        for schema, table in user_tables(connection) if only is None or f"{schema}.{table}" in only}


def dump_tables(dump_path: str) -> set[str]:
    """The tables whose data a dump holds (schema.table), from its table of contents (pg_restore --list)."""
    result = subprocess.run(["pg_restore", "--list", dump_path], capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"pg_restore cannot read the dump: {last_lines(result.stderr)}")
    tables = set()
    for line in result.stdout.splitlines():
        # e.g. "3345; 0 16390 TABLE DATA public notes postgres"
        _, found, rest = line.partition(" TABLE DATA ")
        if found and not line.startswith(";"):
            schema, name, *_ = rest.split(" ")
            tables.add(f"{schema}.{name}")
    return tables


def create_database(server: Database, name: str) -> None:
    """A scratch database only its creator may connect to (new databases let every role connect by default)."""
    with server.connect() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        connection.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))


def drop_database(server: Database, name: str) -> None:
    with server.connect() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "no message"
