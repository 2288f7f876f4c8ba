"""Alembic environment: migrations run under a PostgreSQL advisory lock, so many containers may run
`flask db upgrade` at once: one migrates, the others wait for it and then find nothing left to do."""

import logging
import os

from alembic import context
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from webapp.roles import protect_version_table

log = logging.getLogger("webapp.migrations")
# Any constant bigint, the same in every container of this application.
LOCK_KEY = 4_822_310_017
LOCK_WAIT_SECONDS = int(os.environ.get("MIGRATION_LOCK_WAIT_SECONDS", "300"))
# While migrating, a DDL statement that cannot get its table lock quickly gives up instead of queueing the whole
# application's traffic behind it.
DDL_LOCK_TIMEOUT_SECONDS = int(os.environ.get("MIGRATION_DDL_LOCK_TIMEOUT_SECONDS", "10"))

db = current_app.extensions["migrate"].db
config = context.config


def run_migrations_offline():
    context.configure(url=db.engine.url.render_as_string(hide_password=False), target_metadata=db.metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    options = current_app.extensions["migrate"].configure_args
    with db.engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(text(f"SET lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
            log.info("waiting for the migration lock", extra={"lock_key": LOCK_KEY})
            try:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            except OperationalError as err:
                raise SystemExit(f"error: no migration lock after {LOCK_WAIT_SECONDS} s (lock timeout): another "
                                 "migration is running or stuck; see pg_locks for advisory lock "
                                 f"{LOCK_KEY}") from err
            connection.execute(text(f"SET lock_timeout = '{DDL_LOCK_TIMEOUT_SECONDS}s'"))
            connection.commit()
            log.info("migration lock held")
        try:
            context.configure(connection=connection, target_metadata=db.metadata, **options)
            with context.begin_transaction():
                context.run_migrations()
                if postgres:
                    protect_version_table(connection)
            connection.commit()
        finally:
            if postgres:
                try:
                    connection.rollback()
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                    connection.commit()
                    log.info("migration lock released")
                except Exception:  # noqa: BLE001 a lost connection released the lock; keep the original error
                    log.warning("could not release the migration lock explicitly (the session is gone)")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
