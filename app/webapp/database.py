"""The database: Flask-SQLAlchemy's `db`, with read/write routing. Writes and anything after a write go to the
primary; reads go to a replica, spread over the replicas that are up, falling back to the primary when a replica
fails. `db` lives here, beside its session class, so extensions.py needs nothing from the project."""

from __future__ import annotations

import logging
import random
import threading
import time

from flask import current_app, g, has_app_context
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from sqlalchemy import Delete, Engine, Insert, Update, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase

from webapp.credentials import DatabaseLogin, is_refused_login

log = logging.getLogger(__name__)


class ReplicaHealth:
    """Replicas that failed recently are skipped for a while (per process)."""

    def __init__(self):
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def available(self, names: list[str]) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [n for n in names if self._down_until.get(n, 0) <= now]

    def mark_down(self, name: str, seconds: float) -> None:
        with self._lock:
            self._down_until[name] = time.monotonic() + seconds


replica_health = ReplicaHealth()


class RoutingSession(Session):
    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is not None or not has_app_context() or not current_app.config.get("DATABASE_REPLICAS"):
            return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)
        locking = getattr(clause, "_for_update_arg", None) is not None  # SELECT ... FOR UPDATE precedes a write
        if self._flushing or locking or isinstance(clause, (Insert, Update, Delete)) or g.get("db_primary"):
            g.db_primary = True  # read your own writes for the rest of the request
            return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)
        choices = replica_health.available(current_app.config["DATABASE_REPLICAS"])
        if not choices:
            return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)
        if g.get("db_replica") not in choices:  # one replica per request: a consistent view
            g.db_replica = random.choice(choices)
        return db.engines[g.db_replica]


@event.listens_for(RoutingSession, "after_flush")
def _after_flush(session, context):
    if has_app_context():
        g.db_primary = True


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})


def read_with_fallback(read):
    """Run a read-only unit of work: in autocommit (no BEGIN/ROLLBACK round trips for a read), on a replica when
    there is one. A connection the server closed since its last use (a restart, a failover: the pool does not ping
    before each checkout, which would cost a round trip per request) fails at once and the pool drops its others:
    the read runs once more, at the same place, on a fresh connection. If the replica still fails, it is marked
    down and the read runs on the primary."""
    def autocommit_read():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return read()

    for fresh in (False, True):
        try:
            return autocommit_read()
        except (DBAPIError, PoolTimeout) as err:
            replica = g.pop("db_replica", None)
            if not unreachable(err):
                raise
            db.session.rollback()
            failure = err
            if fresh or not getattr(err, "connection_invalidated", False):
                break
            if replica is not None:
                g.db_replica = replica  # once more at the same place, on a fresh connection
    if replica is None:
        raise failure
    log.warning("replica %s failed, reading from the primary", replica,
                extra={"error": str(getattr(failure, "orig", failure))})
    replica_health.mark_down(replica, current_app.config["REPLICA_RETRY_SECONDS"])
    g.db_primary = True
    return autocommit_read()


def write_with_retry(unit):
    """Run a unit of work that writes and commits. A connection the server closed since its last use fails before
    COMMIT is sent, and a transaction that never committed changed nothing: the unit runs once more on a fresh
    connection. Once COMMIT has been sent a failure is not retried: whether it committed is unknown."""
    g.db_commit_sent = False
    try:
        return unit()
    except DBAPIError as err:
        if not err.connection_invalidated or g.get("db_commit_sent"):
            raise
        db.session.rollback()
        return unit()


@event.listens_for(Engine, "commit")
def _commit_sent(connection):
    if has_app_context():
        g.db_commit_sent = True


def unreachable(err: Exception) -> bool:
    """The database could not be reached (refused, reset, pool exhausted): not the request's fault."""
    return isinstance(err, PoolTimeout) or err.connection_invalidated or _is_connection_error(err)


def _is_connection_error(err: DBAPIError) -> bool:
    import psycopg

    return isinstance(err.orig, psycopg.OperationalError)


def log_in_with(engine: Engine, login: DatabaseLogin) -> None:
    """Each new connection of `engine` logs in with the login's current user and password. Connections already
    open keep working through a rotation (PostgreSQL checks a password only at login); a new one that is refused
    re-reads the secret once and tries again, so a rotation costs no request."""

    @event.listens_for(engine, "do_connect")
    def connect(dialect, connection_record, cargs, cparams):
        user, password = login.current()
        try:
            return dialect.connect(*cargs, **{**cparams, "user": user, "password": password})
        except Exception as err:
            if not is_refused_login(err):
                raise
            login.refresh(f"PostgreSQL refused user {user}")
            user, password = login.current()
            return dialect.connect(*cargs, **{**cparams, "user": user, "password": password})
