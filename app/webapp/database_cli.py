"""`flask --app webapp db roles` and `flask --app webapp db prepare`, beside Flask-Migrate's own `db` commands.

    roles    with the master (administrator) login, DATABASE_MASTER_USER / DATABASE_MASTER_PASSWORD: puts the roles in
             their declared state (webapp.roles). The owner is the login the migrations run as (DATABASE_USER /
             DATABASE_PASSWORD, or DATABASE_URL's); DATABASE_RUNTIME_USER, and DATABASE_BACKUP_USER and
             DATABASE_DRILL_USER where those jobs run, name the others; each *_PASSWORD is used only to create a
             missing role.
    prepare  a release's migration step: roles, then `db upgrade` as the owner. The migration container of the ECS
             task, the compose `migrate` service and the native runner run it before any Gunicorn starts.

Every failure is one line on stderr naming the problem, and exit code 1.
"""

from __future__ import annotations

import functools
import os

import click
import psycopg
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate.cli import db as db_group
from sqlalchemy.exc import DBAPIError

from webapp.config import ConfigError
from webapp.credentials import is_refused_login
from webapp.postgres import ConnectError, Database
from webapp.roles import Declared, RolesError, reconcile


def reported(command):
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (ConfigError, ConnectError, RolesError) as err:
            raise click.ClickException(str(err)) from None
        except (psycopg.Error, DBAPIError) as err:
            err = getattr(err, "orig", None) or err
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise click.ClickException(f"PostgreSQL refused: {first}") from None
    return run


def declared_roles(database: Database) -> Declared:
    def login(kind: str) -> tuple[str, str] | None:
        name = os.environ.get(f"DATABASE_{kind}_USER", "")
        return (name, os.environ.get(f"DATABASE_{kind}_PASSWORD", "")) if name else None

    runtime = login("RUNTIME")
    if runtime is None:
        raise ConfigError("set DATABASE_RUNTIME_USER (and DATABASE_RUNTIME_PASSWORD to create it): the role the "
                          "application serves with")
    return Declared.of((database.user, database.password), runtime, login("BACKUP"), login("DRILL"))


def master_login(database: Database) -> Database:
    user, password = os.environ.get("DATABASE_MASTER_USER", ""), os.environ.get("DATABASE_MASTER_PASSWORD", "")
    if not user or not password:
        raise ConfigError("set DATABASE_MASTER_USER and DATABASE_MASTER_PASSWORD: roles are kept with the master "
                          "(administrator) login")
    return database.as_user(user, password)


def run_roles() -> None:
    database = Database.from_url(current_app.config["SQLALCHEMY_DATABASE_URI"], application_name="webapp-roles")
    declared = declared_roles(database)
    try:
        connection = master_login(database).connect(autocommit=True)
    except ConnectError as err:
        if not is_refused_login(err):
            raise
        # Every new task runs this step: a master rotation failed half way must not stop the service from scaling.
        missing = missing_roles(database, declared)
        if missing:
            raise ConnectError(f"{err} The roles {', '.join(missing)} do not exist yet, so they cannot wait for "
                               "it (docs/operations.md: when a rotation fails)") from None
        click.echo("roles: not checked: the master login was refused (docs/operations.md: when a rotation fails); "
                   "every role exists, the migration goes on", err=True)
        return
    with connection:
        done = reconcile(connection, declared)
    for change in done.changes:
        click.echo(f"roles: {change}")
    for note in done.left:
        click.echo(f"roles: left as it is: {note}")
    click.echo(f"roles: {len(done.changes)} change{'s' * (len(done.changes) != 1)}"
               + (" (up to date)" if not done.changes else ""))


def missing_roles(database: Database, declared: Declared) -> list[str]:
    """The declared roles that do not exist, as the owner sees them."""
    names = [role.name for role in (declared.owner, *declared.granted())]
    with database.connect() as connection:
        found = {row[0] for row in connection.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                                                      (names,)).fetchall()}
    return [name for name in names if name not in found]


@click.command("roles")
@with_appcontext
@reported
def roles_command():
    """Create the database roles and put back what drifted (master login)."""
    run_roles()


@click.command("prepare")
@with_appcontext
@reported
def prepare_command():
    """A release's migration step: roles (master login), then upgrade (owner)."""
    from flask_migrate import upgrade

    run_roles()
    upgrade()


def register() -> None:
    """Add the commands to Flask-Migrate's `db` group (replacing, so calling it twice is harmless)."""
    db_group.add_command(roles_command)
    db_group.add_command(prepare_command)
