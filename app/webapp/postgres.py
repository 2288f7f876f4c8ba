"""Where a PostgreSQL database is and how to log in to it, for the tools that connect outside SQLAlchemy (the backup
commands, the roles command): taken from the application's own URL, TLS settings included."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import psycopg
from sqlalchemy.engine import make_url


class ConnectError(Exception):
    """The database cannot be reached or refuses the login; the message says which and what to check."""


CONNECT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    user: str
    password: str
    name: str
    sslmode: str = "prefer"
    sslrootcert: str = ""
    application_name: str = "webapp"

    @classmethod
    def from_url(cls, url: str, application_name: str = "webapp") -> Database:
        if not url or not url.startswith("postgresql"):
            raise ConnectError("this needs PostgreSQL: set DATABASE_URL, or DATABASE_HOST (+ DATABASE_PORT, "
                               "DATABASE_NAME, DATABASE_USER, DATABASE_PASSWORD)")
        parts = make_url(url)
        return cls(host=parts.host or "localhost", port=parts.port or 5432, user=parts.username or "postgres",
                   password=parts.password or "", name=parts.database or "postgres",
                   sslmode=str(parts.query.get("sslmode", "prefer")),
                   sslrootcert=str(parts.query.get("sslrootcert", "")), application_name=application_name)

    def named(self, name: str) -> Database:
        """The same server and credentials, another database."""
        return replace(self, name=name)

    def as_user(self, user: str, password: str) -> Database:
        """The same server and database, another login."""
        return replace(self, user=user, password=password)

    def __str__(self) -> str:
        return f"database {self.name!r} on {self.host}:{self.port}"

    def libpq_environment(self) -> dict[str, str]:
        """For libpq's command-line tools (pg_dump, pg_restore): the password never on a command line."""
        tls = {"PGSSLROOTCERT": self.sslrootcert} if self.sslrootcert else {}
        return {**os.environ, "PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
                "PGPASSWORD": self.password, "PGDATABASE": self.name, "PGSSLMODE": self.sslmode,
                "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS), "PGAPPNAME": self.application_name, **tls}

    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        tls = {"sslrootcert": self.sslrootcert} if self.sslrootcert else {}
        try:
            return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                   dbname=self.name, sslmode=self.sslmode, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                   application_name=self.application_name, autocommit=autocommit, **tls)
        except psycopg.OperationalError as err:
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise ConnectError(f"cannot connect to {self} as {self.user}: {reason}. Check that it runs, is "
                               "reachable from here, and the DATABASE_* settings.") from None


