"""The database's roles and what each may do, kept as declared.

    owner    owns the schema's tables and sequences; runs the migrations; may connect, use and create in the schema
    runtime  what the API needs: SELECT, INSERT, UPDATE, DELETE on the tables (SELECT alone on the migrations'
             version table), USAGE on the sequences; no DDL, no CREATE, no TRUNCATE, no other database
    backup   reads every table and sequence (pg_dump); writes nothing
    drill    reads like backup and may CREATE DATABASE: the restore drill restores into a scratch database it owns
    <runtime>_clone  made by AWS's multi-user rotation function, which alternates the runtime login between the two;
             a member of runtime, with no privilege of its own

`flask db roles` (reconcile) runs with the master credentials, before the migrations, under an advisory lock: it
creates a missing role (with the password from the environment; rotation owns it afterwards), puts back attributes,
memberships and privileges that drifted, makes the owner own the schema's objects, and sets the owner's default
privileges, so a table a later migration creates is usable by runtime, backup and drill without a grant by hand.
A second run changes nothing. The default privileges would also let runtime write the version table: the
migration environment takes that back after every upgrade (protect_version_table).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

SCHEMA = "public"
VERSION_TABLE = "alembic_version"
LOCK_KEY = 4_822_310_018  # beside the migration lock's 4_822_310_017
LOCK_WAIT_SECONDS = 60
# PostgreSQL 16 changed role membership (INHERIT and SET per grant, grantor-aware REVOKE): this is written and tested
# for 15, the image's client's major; a newer server is refused rather than half-kept.
NEWEST_MAJOR = 15
CLONE_SUFFIX = "_clone"  # AWS's multi-user rotation function's alternate login
NAME = re.compile(r"[a-z_][a-z0-9_]{0,56}")  # 63 bytes with the clone's suffix
WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"})
PUBLIC = "PUBLIC"
# The schema's tables, views and sequences, not those an extension made (pg_stat_statements' view, say), with their
# owner and whether a table owns them (serial and identity sequences follow their table).
RELATIONS = ("SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), EXISTS (SELECT 1 FROM pg_depend d WHERE "
             "d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')) "
             "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
             "AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE "
             "e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e') ORDER BY c.relkind = 'S', 1")


class RolesError(Exception):
    """The roles cannot be put in their declared state; the message says why and what to do."""


@dataclass(frozen=True)
class Role:
    """One declared role: how it logs in and what it may do in the application's database."""

    name: str
    password: str = ""  # only to create it when it is missing
    createdb: bool = False
    member_of: frozenset = frozenset()
    database: frozenset = frozenset({"CONNECT"})
    schema: frozenset = frozenset({"USAGE"})
    tables: frozenset = frozenset()
    version_table: frozenset = frozenset()
    sequences: frozenset = frozenset()


@dataclass(frozen=True)
class Declared:
    """The application's roles, from their names (and the passwords to create them with)."""

    owner: Role
    runtime: Role
    readers: tuple[Role, ...] = ()  # backup, drill

    @classmethod
    def of(cls, owner: tuple[str, str], runtime: tuple[str, str], backup: tuple[str, str] | None = None,
           drill: tuple[str, str] | None = None) -> Declared:
        names = [r[0] for r in (owner, runtime, backup, drill) if r]
        bad = [n for n in names if not NAME.fullmatch(n) or n.startswith("pg_") or n == "public"]
        if bad or len(set(names)) != len(names):
            raise RolesError(f"role names {', '.join(map(json.dumps, names))}: each must be distinct, lowercase "
                             "letters, digits and _, at most 57 characters, not starting with pg_")
        unusable = [r[0] for r in (owner, runtime, backup, drill) if r and "\x00" in r[1]]
        if unusable:
            raise RolesError(f"the password of {', '.join(unusable)} holds a NUL character, which PostgreSQL cannot "
                             "store: give a password without one")
        read = frozenset({"SELECT"})
        readers = tuple(Role(*login, createdb=kind == "drill", tables=read, version_table=read, sequences=read)
                        for kind, login in (("backup", backup), ("drill", drill)) if login)
        return cls(
            owner=Role(owner[0], owner[1], schema=frozenset({"USAGE", "CREATE"})),
            runtime=Role(runtime[0], runtime[1], tables=frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}),
                         version_table=read, sequences=frozenset({"USAGE"})),
            readers=readers)

    def granted(self) -> list[Role]:
        """The roles that receive privileges on the owner's objects."""
        return [self.runtime, *self.readers]

    def clone(self) -> Role:
        """The runtime's alternate login: no privilege of its own, a member of runtime."""
        return Role(self.runtime.name + CLONE_SUFFIX, member_of=frozenset({self.runtime.name}),
                    database=frozenset(), schema=frozenset())


@dataclass
class Reconciler:
    """Puts one database's roles in their declared state through an administrator's connection (in a transaction
    the caller commits). `changes` lists what was done; `left` what could not be and is not the roles' own."""

    connection: psycopg.Connection
    declared: Declared
    changes: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def run(self) -> None:
        major = int(self._one("SHOW server_version_num")) // 10000
        if major > NEWEST_MAJOR:
            raise RolesError(f"PostgreSQL {major}: the roles are kept for PostgreSQL {NEWEST_MAJOR} and older (16 "
                             "changed how role memberships are granted); use 15, or extend webapp/roles.py and its "
                             "tests first")
        self._execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{LOCK_WAIT_SECONDS}s")))
        self._execute(sql.SQL("SELECT pg_advisory_xact_lock({})").format(sql.Literal(LOCK_KEY)))
        self.superuser = self._one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        self.admin = self._one("SELECT current_user")
        owner, clone = self.declared.owner, self.declared.clone()
        granted = self.declared.granted() + ([clone] if self._exists(clone.name) else [])
        for role in [owner, *granted]:
            self._role(role)
        self._act_for_owner()
        for role in [owner, *granted]:
            self._memberships(role)
        self._database([owner, *granted])
        self._other_databases()
        self._schema([owner, *granted])
        self._ownership()
        self._objects(granted)
        self._default_privileges()

    # --- roles

    def _role(self, role: Role) -> None:
        row = self.connection.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolinherit "
            "FROM pg_roles WHERE rolname = %s", (role.name,)).fetchone()
        if row is None:
            if not role.password:
                raise RolesError(f"role {role.name} does not exist and no password was given to create it with")
            self._change(f"created role {role.name}", "CREATE ROLE {} LOGIN PASSWORD {}" +
                         (" CREATEDB" if role.createdb else ""), role.name, sql.Literal(role.password))
            return
        superuser, createrole, createdb, login, replication, bypassrls, inherit = row
        wanted = {"SUPERUSER": (superuser, False), "REPLICATION": (replication, False),
                  "BYPASSRLS": (bypassrls, False), "CREATEROLE": (createrole, False),
                  "CREATEDB": (createdb, role.createdb), "LOGIN": (login, True), "INHERIT": (inherit, True)}
        for attribute, (actual, expected) in wanted.items():
            if actual != expected:
                keyword = attribute if expected else "NO" + attribute
                if attribute in ("SUPERUSER", "REPLICATION", "BYPASSRLS") and not self.superuser:
                    raise RolesError(f"role {role.name} has {attribute}, which only a superuser can take away "
                                     f"(ALTER ROLE {role.name} {keyword}); {self.admin} is not one")
                self._change(f"{role.name}: {keyword}", "ALTER ROLE {} " + keyword, role.name)

    def _act_for_owner(self) -> None:
        """The administrator acts for the owner (default privileges, taking over objects it made before): a member
        with the owner's privileges."""
        owner = self.declared.owner.name
        if self.superuser or self._one(sql.SQL("SELECT pg_has_role(current_user, {}, 'USAGE')").format(
                sql.Literal(owner))):
            return
        self._change(f"{self.admin} may act for {owner}", "GRANT {} TO {}", owner, self.admin)

    def _memberships(self, role: Role) -> None:
        actual = self._granted_to(role.name)
        for extra in sorted(actual - role.member_of):
            self._change(f"{role.name} is no longer a member of {extra}", "REVOKE {} FROM {}", extra, role.name)
        for missing in sorted(role.member_of - actual):
            self._change(f"{role.name} is a member of {missing}", "GRANT {} TO {}", missing, role.name)

    # --- privileges

    def _database(self, roles: list[Role]) -> None:
        acl = self._acl("SELECT d.datacl, 'd', d.datdba FROM pg_database d WHERE d.datname = current_database()")
        wanted = {PUBLIC: frozenset(), self.declared.owner.name: self.declared.owner.database,
                  **{r.name: r.database for r in roles}}
        target = sql.SQL("DATABASE {}").format(sql.Identifier(self._one("SELECT current_database()")))
        self._align("database", target, acl, wanted)

    def _other_databases(self) -> None:
        """No other database of the server takes every role's connections (PUBLIC's CONNECT, the default):
        revoked where the administrator owns the database; listed in `left` where it does not (on RDS, rdsadmin
        owns the templates) and for the templates, which hold no data and which tools connect to."""
        rows = self.connection.execute(
            "SELECT d.datname, pg_get_userbyid(d.datdba), d.datistemplate, d.datdba = (SELECT oid FROM pg_roles "
            "WHERE rolname = current_user) FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', "
            "d.datdba))) a WHERE d.datallowconn AND d.datname <> current_database() AND a.grantee = 0 "
            "AND a.privilege_type = 'CONNECT' ORDER BY 1").fetchall()
        for name, owner, template, owned in rows:
            if template:
                self.left.append(f"template database {name} lets every role connect (it holds no data)")
            elif owned or self.superuser:
                self._change(f"database {name}: PUBLIC may no longer connect", "REVOKE CONNECT, TEMPORARY ON "
                             "DATABASE {} FROM PUBLIC", name)
            else:
                self.left.append(f"database {name} (owned by {owner}) still lets every role connect")

    def _schema(self, roles: list[Role]) -> None:
        acl = self._acl("SELECT n.nspacl, 'n', n.nspowner FROM pg_namespace n WHERE n.nspname = %s", SCHEMA)
        wanted = {PUBLIC: frozenset(), self.declared.owner.name: self.declared.owner.schema,
                  **{r.name: r.schema for r in roles}}
        self._align("schema", sql.SQL("SCHEMA {}").format(sql.Identifier(SCHEMA)), acl, wanted)

    def _ownership(self) -> None:
        """The owner owns every table, view and sequence of the schema (a table's own sequences follow it)."""
        owner = self.declared.owner.name
        for name, kind, current, follows_table in self.connection.execute(RELATIONS, (SCHEMA,)).fetchall():
            if current == owner or follows_table:
                continue
            keyword = {"S": "SEQUENCE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}.get(kind, "TABLE")
            self._change(f"{name} is owned by {owner}", f"ALTER {keyword} {{}} OWNER TO {{}}",
                         sql.Identifier(SCHEMA, name), owner)

    def _objects(self, roles: list[Role]) -> None:
        for name, kind, _, _ in self.connection.execute(RELATIONS, (SCHEMA,)).fetchall():
            sequence = kind == "S"
            acl = self._acl("SELECT c.relacl, CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END, c.relowner "
                            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = %s AND c.relname = %s", SCHEMA, name)
            wanted = {PUBLIC: frozenset()}
            for role in roles:
                if sequence:
                    wanted[role.name] = role.sequences
                else:
                    wanted[role.name] = role.version_table if name == VERSION_TABLE else role.tables
            keyword = "SEQUENCE" if sequence else "TABLE"
            self._align(name, sql.SQL(keyword + " {}").format(sql.Identifier(SCHEMA, name)), acl, wanted)

    def _default_privileges(self) -> None:
        owner = self.declared.owner.name
        for objtype, keyword, of_role in (("r", "TABLES", lambda r: r.tables), ("S", "SEQUENCES",
                                                                                 lambda r: r.sequences)):
            acl = self._acl("SELECT d.defaclacl, NULL::text, NULL::oid FROM pg_default_acl d JOIN pg_namespace n ON "
                            "n.oid = d.defaclnamespace WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE "
                            "rolname = %s) AND n.nspname = %s AND d.defaclobjtype = %s", owner, SCHEMA, objtype)
            for role in self.declared.granted():
                actual, expected = acl.get(role.name, frozenset()), of_role(role)
                prefix = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} ").format(
                    sql.Identifier(owner), sql.Identifier(SCHEMA))
                if actual - expected:
                    self._execute(prefix + sql.SQL("REVOKE {} ON {} FROM {}").format(
                        _privileges(actual - expected), sql.SQL(keyword), sql.Identifier(role.name)))
                    self.changes.append(f"new {keyword.lower()}: {role.name} no longer gets "
                                        f"{', '.join(sorted(actual - expected))}")
                if expected - actual:
                    self._execute(prefix + sql.SQL("GRANT {} ON {} TO {}").format(
                        _privileges(expected - actual), sql.SQL(keyword), sql.Identifier(role.name)))
                    self.changes.append(f"new {keyword.lower()}: {role.name} gets "
                                        f"{', '.join(sorted(expected - actual))}")

    # --- helpers

    def _align(self, label: str, target: sql.Composable, acl: dict[str, frozenset],
               wanted: dict[str, frozenset]) -> None:
        """GRANT what a grantee lacks, REVOKE what it has beyond what it should (for the grantees in `wanted`)."""
        for grantee, expected in wanted.items():
            actual = acl.get(grantee, frozenset())
            who = sql.SQL(PUBLIC) if grantee == PUBLIC else sql.Identifier(grantee)
            if actual - expected:
                self._execute(sql.SQL("REVOKE {} ON {} FROM {}").format(_privileges(actual - expected), target,
                                                                         who))
                self.changes.append(f"{label}: {grantee} no longer has {', '.join(sorted(actual - expected))}")
            if expected - actual:
                self._execute(sql.SQL("GRANT {} ON {} TO {}").format(_privileges(expected - actual), target, who))
                self.changes.append(f"{label}: {grantee} has {', '.join(sorted(expected - actual))}")

    def _acl(self, query: str, *params) -> dict[str, frozenset]:
        """grantee -> privileges, from a query returning (acl, default-acl kind or NULL, owner oid); a NULL acl
        is the object's default one."""
        rows = self.connection.execute(
            f"SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type FROM ({query}) AS o(acl, kind, owner), "
            "aclexplode(CASE WHEN o.acl IS NULL AND o.kind IS NOT NULL THEN acldefault(o.kind::\"char\", o.owner) "
            "ELSE o.acl END) a LEFT JOIN pg_roles r ON r.oid = a.grantee", params).fetchall()
        found: dict[str, set] = {}
        for grantee, privilege in rows:
            found.setdefault(grantee, set()).add(privilege)
        return {k: frozenset(v) for k, v in found.items()}

    def _granted_to(self, member: str) -> frozenset:
        return frozenset(r[0] for r in self.connection.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON "
            "u.oid = m.member WHERE u.rolname = %s", (member,)).fetchall())

    def _exists(self, name: str) -> bool:
        return self.connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None

    def _one(self, query):
        return self.connection.execute(query).fetchone()[0]

    def _execute(self, statement: sql.Composable) -> None:
        self.connection.execute(statement)

    def _change(self, description: str, template: str, *names) -> None:
        parts = [n if isinstance(n, sql.Composable) else sql.Identifier(n) for n in names]
        self._execute(sql.SQL(template).format(*parts))
        self.changes.append(description)


def _privileges(privileges) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL(p) for p in sorted(privileges))


def reconcile(connection: psycopg.Connection, declared: Declared) -> Reconciler:
    """Put the roles of the connection's database in their declared state, in one transaction."""
    reconciler = Reconciler(connection, declared)
    with connection.transaction():
        reconciler.run()
    return reconciler


def protect_version_table(connection) -> None:
    """After a migration (SQLAlchemy connection of the owner): only the owner writes the version table, whatever
    its default privileges gave others when it was created."""
    rows = connection.exec_driver_sql(
        "SELECT coalesce(r.rolname, 'PUBLIC'), string_agg(a.privilege_type, ', ') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON "
        f"r.oid = a.grantee WHERE n.nspname = '{SCHEMA}' AND c.relname = '{VERSION_TABLE}' "
        f"AND a.grantee <> c.relowner AND a.privilege_type IN ({', '.join(repr(w) for w in sorted(WRITES))}) "
        "GROUP BY 1").fetchall()
    quote = connection.dialect.identifier_preparer.quote
    for grantee, privileges in rows:
        who = PUBLIC if grantee == PUBLIC else quote(grantee)
        connection.exec_driver_sql(f"REVOKE {privileges} ON {quote(SCHEMA)}.{quote(VERSION_TABLE)} FROM {who}")
