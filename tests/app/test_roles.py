"""The database roles (webapp/roles.py, `flask db roles` / `flask db prepare`) on a real PostgreSQL, kept by a master
login made as RDS makes one: not a superuser, with CREATEROLE and CREATEDB, owning the application's database."""

from __future__ import annotations

import re

import psycopg
import psycopg.sql
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from webapp.roles import Declared, RolesError, reconcile

from tests.strategies import hostile_text

MASTER, MASTER_PASSWORD = "app_admin", "admin-password-1"
LOGINS = {"owner": ("app_owner", "owner-password-1"), "runtime": ("app_runtime", "runtime-password-1"),
          "backup": ("app_backup", "backup-password-1"), "drill": ("app_drill", "drill-password-1")}
DECLARED = Declared.of(LOGINS["owner"], LOGINS["runtime"], LOGINS["backup"], LOGINS["drill"])


@pytest.fixture
def server(postgres):
    """A fresh application database (and another one) owned by the master; no application roles yet."""
    primary, _ = postgres
    with primary.connect() as c:
        for name in ("roles_app", "roles_other"):
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in [*(login for login, _ in LOGINS.values()), "app_runtime_clone"]:
            c.execute(f'DROP ROLE IF EXISTS "{role}"')
    primary.create_master(MASTER, MASTER_PASSWORD, "roles_app")
    primary.create_database("roles_other", owner=MASTER)
    yield primary
    with primary.connect() as c:
        for name in ("roles_app", "roles_other"):
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def login(server, kind: str, database: str = "roles_app", autocommit: bool = True) -> psycopg.Connection:
    user, password = (MASTER, MASTER_PASSWORD) if kind == "master" else LOGINS[kind]
    return psycopg.connect(host="127.0.0.1", port=server.port, user=user, password=password, dbname=database,
                           autocommit=autocommit, connect_timeout=5)


def keep(server, declared: Declared = DECLARED):
    with login(server, "master") as connection:
        return reconcile(connection, declared)


def migrate(server) -> None:
    """What a migration does, as the owner: a table with a sequence, and the version table."""
    with login(server, "owner") as owner:
        owner.execute("CREATE TABLE notes (id serial PRIMARY KEY, title text NOT NULL)")
        owner.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")


@pytest.fixture
def migrated(server):
    """Roles kept, a migration run as the owner, roles kept again (as the next release's migration step would)."""
    keep(server)
    migrate(server)
    keep(server)
    return server


def refused(connection: psycopg.Connection, statement: str) -> bool:
    try:
        connection.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_a_second_run_changes_nothing(server):
    first = keep(server)
    assert any("created role app_runtime" == c for c in first.changes)
    assert keep(server).changes == []
    migrate(server)
    # The version table came with the owner's default privileges; only the owner writes it.
    assert keep(server).changes == ["alembic_version: app_runtime no longer has DELETE, INSERT, UPDATE"]
    assert keep(server).changes == []


def test_the_runtime_role_has_what_the_api_needs_and_nothing_more(migrated):
    server = migrated
    with login(server, "runtime") as runtime:
        runtime.execute("INSERT INTO notes (title) VALUES ('a')")
        runtime.execute("UPDATE notes SET title = 'b'")
        assert runtime.execute("SELECT title FROM notes").fetchone() == ("b",)
        runtime.execute("DELETE FROM notes")
        for statement in ("CREATE TABLE mine (a int)", "TRUNCATE notes", "INSERT INTO alembic_version VALUES ('x')",
                          "SELECT * FROM pg_authid", "CREATE SCHEMA mine"):
            assert refused(runtime, statement), statement
        for statement in ("DROP TABLE notes", "ALTER TABLE notes ADD COLUMN extra int"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
                runtime.execute(statement)
        attributes = runtime.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                                     "FROM pg_roles WHERE rolname = current_user").fetchone()
        assert attributes == (False, False, False, False, False)
    with pytest.raises(psycopg.OperationalError, match="CONNECT privilege"):
        login(server, "runtime", database="roles_other")


def test_what_the_master_may_not_change_is_said_not_hidden(server):
    """The databases the master does not own (here `postgres`, on RDS the ones rdsadmin owns) and the templates
    keep PUBLIC's CONNECT; the command lists them instead of passing over them."""
    left = keep(server).left
    assert "database postgres (owned by postgres) still lets every role connect" in left
    assert "template database template1 lets every role connect (it holds no data)" in left
    assert not any("roles_other" in note for note in left)  # the master's own: revoked, not left


def test_the_backup_role_reads_everything_and_writes_nothing(migrated):
    server = migrated
    with login(server, "backup") as backup:
        assert backup.execute("SELECT count(*) FROM notes").fetchone() == (0,)
        assert backup.execute("SELECT last_value FROM notes_id_seq").fetchone() == (1,)
        for statement in ("INSERT INTO notes (title) VALUES ('x')", "UPDATE notes SET title = 'x'",
                          "DELETE FROM notes", "TRUNCATE notes", "CREATE TABLE mine (a int)",
                          "SELECT nextval('notes_id_seq')", "CREATE TEMPORARY TABLE mine (a int)",
                          "CREATE DATABASE mine"):
            assert refused(backup, statement), statement


def test_the_drill_role_reads_and_may_create_a_scratch_database_only(migrated):
    server = migrated
    with login(server, "drill") as drill:
        assert drill.execute("SELECT count(*) FROM notes").fetchone() == (0,)
        assert refused(drill, "INSERT INTO notes (title) VALUES ('x')")
        drill.execute("CREATE DATABASE roles_scratch")
        drill.execute("DROP DATABASE roles_scratch")


def test_drift_is_put_back(migrated):
    server = migrated
    with login(server, "master") as master:
        master.execute("GRANT TRUNCATE, TRIGGER ON notes TO app_runtime")
        master.execute("GRANT CREATE ON SCHEMA public TO app_runtime")
        master.execute("GRANT UPDATE ON SEQUENCE notes_id_seq TO app_backup")
        master.execute("GRANT INSERT ON notes TO PUBLIC")
        master.execute("ALTER ROLE app_runtime CREATEDB")
        master.execute("GRANT app_owner TO app_runtime")
        master.execute("REVOKE SELECT ON notes FROM app_drill")
        master.execute("GRANT CONNECT ON DATABASE roles_other TO PUBLIC")
        master.execute("ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT TRUNCATE ON TABLES TO "
                       "app_runtime")
        master.execute("CREATE TABLE made_by_master (a int)")  # e.g. a migration once run with the master login
    changes = keep(server).changes
    assert set(changes) == {
        "notes: app_runtime no longer has TRIGGER, TRUNCATE", "schema: app_runtime no longer has CREATE",
        "notes_id_seq: app_backup no longer has UPDATE", "notes: PUBLIC no longer has INSERT",
        "app_runtime: NOCREATEDB", "app_runtime is no longer a member of app_owner", "notes: app_drill has SELECT",
        "database roles_other: PUBLIC may no longer connect", "new tables: app_runtime no longer gets TRUNCATE",
        "made_by_master is owned by app_owner", "made_by_master: app_runtime has DELETE, INSERT, SELECT, UPDATE",
        "made_by_master: app_backup has SELECT", "made_by_master: app_drill has SELECT"}, changes
    assert keep(server).changes == []


def test_the_rotation_clone_inherits_runtime_and_is_kept_to_that(migrated):
    """AWS's multi-user rotation function creates <runtime>_clone and grants it the runtime role; the roles
    command keeps the clone a plain member of runtime."""
    server = migrated
    with login(server, "master") as master:  # what the rotation function does with the master login
        master.execute("CREATE ROLE app_runtime_clone WITH LOGIN PASSWORD 'clone-password-1'")
        master.execute("GRANT app_runtime TO app_runtime_clone")
        master.execute("GRANT app_owner TO app_runtime_clone")  # drift
    assert keep(server).changes == ["app_runtime_clone is no longer a member of app_owner"]
    with psycopg.connect(host="127.0.0.1", port=server.port, user="app_runtime_clone", password="clone-password-1",
                         dbname="roles_app", autocommit=True) as clone:
        clone.execute("INSERT INTO notes (title) VALUES ('from the clone')")
        assert refused(clone, "TRUNCATE notes")


def test_superuser_attributes_are_reported_when_the_master_cannot_remove_them(server):
    keep(server)
    with server.connect() as superuser:
        superuser.execute("ALTER ROLE app_backup BYPASSRLS")
    with pytest.raises(RolesError, match="app_backup has BYPASSRLS, which only a superuser can take away"):
        keep(server)


def test_a_missing_role_without_a_password_and_bad_names_are_refused(server):
    with pytest.raises(RolesError, match="app_runtime does not exist and no password"):
        keep(server, Declared.of(LOGINS["owner"], ("app_runtime", "")))
    with pytest.raises(RolesError, match="each must be distinct"):
        Declared.of(("app_owner", "x"), ("app_owner", "y"))
    with pytest.raises(RolesError, match="not starting with pg_"):
        Declared.of(("app_owner", "x"), ("pg_runtime", "y"))


def test_two_runs_at_once_wait_for_each_other(server):
    """Tasks starting together run the migration step together: the advisory lock makes the second wait and find
    nothing to do, instead of failing on a role the first just created."""
    import threading

    results, errors = [], []

    def run():
        try:
            results.append(keep(server).changes)
        except Exception as err:  # noqa: BLE001 collected for the assertion
            errors.append(err)
    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and sorted(map(len, results))[:2] == [0, 0] and max(map(len, results)) > 0


def test_flask_db_prepare_creates_the_roles_then_migrates_as_the_owner(server, monkeypatch):
    env = {"APP_ENV": "production", "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(server.port),
           "DATABASE_NAME": "roles_app", "DATABASE_USER": LOGINS["owner"][0],
           "DATABASE_PASSWORD": LOGINS["owner"][1], "DATABASE_MASTER_USER": MASTER,
           "DATABASE_MASTER_PASSWORD": MASTER_PASSWORD}
    for kind in ("RUNTIME", "BACKUP", "DRILL"):
        env[f"DATABASE_{kind}_USER"], env[f"DATABASE_{kind}_PASSWORD"] = LOGINS[kind.lower()]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from webapp import create_app

    app = create_app()
    result = app.test_cli_runner().invoke(args=["db", "prepare"])
    assert result.exit_code == 0, result.output
    assert "roles: created role app_runtime" in result.output
    with login(server, "runtime") as runtime:
        owners = runtime.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' "
                                 "ORDER BY 1").fetchall()
        assert owners == [("alembic_version", "app_owner"), ("api_tokens", "app_owner"),
                          ("idempotency_keys", "app_owner"), ("notes", "app_owner")]
        assert refused(runtime, "UPDATE alembic_version SET version_num = 'x'")  # taken back after the upgrade
        # The roles ran before the migration made the table: the owner's default privileges alone allow this.
        runtime.execute("INSERT INTO notes (title, body, created_at, updated_at) VALUES ('t', 'b', now(), now())")
    again = app.test_cli_runner().invoke(args=["db", "prepare"])
    assert again.exit_code == 0 and "roles: 0 changes (up to date)" in again.output


def test_a_refused_master_login_does_not_stop_a_release_whose_roles_exist(server, monkeypatch):
    """Every new task runs the migration step: a master rotation that failed half way (its password changed in the
    database, not yet in the secret) must not stop scale-out while the roles are in place; before they exist it is
    an error naming what to do."""
    env = {"APP_ENV": "production", "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(server.port),
           "DATABASE_NAME": "roles_app", "DATABASE_USER": LOGINS["owner"][0],
           "DATABASE_PASSWORD": LOGINS["owner"][1], "DATABASE_MASTER_USER": MASTER,
           "DATABASE_MASTER_PASSWORD": "not-the-password", "DATABASE_RUNTIME_USER": LOGINS["runtime"][0],
           "DATABASE_RUNTIME_PASSWORD": LOGINS["runtime"][1]}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from webapp import create_app

    runner = create_app().test_cli_runner()
    before = runner.invoke(args=["db", "prepare"])  # no role yet, not even the owner: it cannot log in
    assert before.exit_code == 1 and "password authentication failed" in before.output
    keep(server)
    after = runner.invoke(args=["db", "prepare"])
    assert after.exit_code == 0, after.output
    assert "roles: not checked: the master login was refused" in after.output
    with login(server, "runtime") as runtime:  # the migration ran as the owner all the same
        assert runtime.execute("SELECT count(*) FROM notes").fetchone() == (0,)


def test_commands_fail_with_one_line_naming_what_to_set(server, monkeypatch):
    monkeypatch.setenv("DATABASE_HOST", "127.0.0.1")
    monkeypatch.setenv("DATABASE_PORT", str(server.port))
    monkeypatch.setenv("DATABASE_NAME", "roles_app")
    monkeypatch.setenv("DATABASE_USER", LOGINS["owner"][0])
    monkeypatch.setenv("DATABASE_PASSWORD", LOGINS["owner"][1])
    from webapp import create_app

    runner = create_app("testing").test_cli_runner()
    result = runner.invoke(args=["db", "roles"])
    assert result.exit_code == 1 and "Error: set DATABASE_RUNTIME_USER" in result.output
    monkeypatch.setenv("DATABASE_RUNTIME_USER", "app_runtime")
    result = runner.invoke(args=["db", "roles"])
    assert result.exit_code == 1 and "Error: set DATABASE_MASTER_USER and DATABASE_MASTER_PASSWORD" in result.output
    monkeypatch.setenv("DATABASE_MASTER_USER", MASTER)
    monkeypatch.setenv("DATABASE_MASTER_PASSWORD", "wrong")
    result = runner.invoke(args=["db", "roles"])
    assert result.exit_code == 1 and "password authentication failed" in result.output
    assert "Traceback" not in result.output


# Hostile names and passwords (tests/strategies.py), as an operator's settings and secrets give them: refused in
# one line, or created on the real server so that the login works with exactly that password.
ROLE_NAMES = st.one_of(st.from_regex(r"[a-z_][a-z0-9_]{0,60}", fullmatch=True), hostile_text(12))


@given(names=st.lists(ROLE_NAMES, min_size=2, max_size=4))
def test_any_role_names_are_declared_as_given_or_refused(names):
    logins = [(name, "password-1") for name in names]
    try:
        declared = Declared.of(*logins)
    except RolesError as err:
        assert str(err).startswith("role names ") and "\n" not in str(err)
        return
    declared_names = [role.name for role in (declared.owner, declared.runtime, *declared.readers)]
    assert declared_names == names and len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]{0,56}", n) and not n.startswith("pg_") for n in names), names


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=hostile_text(30), name=st.from_regex(r"app_[a-z0-9_]{1,20}", fullmatch=True))
@example(password="a\x00b", name="app_nul").via("PostgreSQL text cannot hold NUL")
@example(password="", name="app_empty").via("no password to create the role with")
def test_any_password_creates_a_login_that_works_with_it_or_is_refused(server, password, name):
    try:
        keep(server, Declared.of(LOGINS["owner"], (name, password)))
    except RolesError as err:
        assert name in str(err) and "\n" not in str(err), str(err)
        return
    try:
        with psycopg.connect(host="127.0.0.1", port=server.port, user=name, password=password, dbname="roles_app",
                             connect_timeout=5) as connection:
            assert connection.execute("SELECT current_user").fetchone() == (name,)
    finally:
        with server.connect("roles_app") as c:
            c.execute(psycopg.sql.SQL("DROP OWNED BY {0}").format(psycopg.sql.Identifier(name)))
            c.execute(psycopg.sql.SQL("DROP ROLE {0}").format(psycopg.sql.Identifier(name)))
