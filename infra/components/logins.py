"""The database's logins: the master and one role per job (app/webapp/roles.py says what each may do), each with
its own secret, shaped as AWS's rotation functions read and write it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from infra.components import type_token
from infra.components.secrets import DATABASE_PASSWORD_SPECIALS, SCHEDULED, store
from infra.settings import DatabaseSettings, SecretsSettings

# How each login rotates (infra/components/rotation.py): its own password changed with its own login, or, for the
# login every web worker holds, AWS's multi-user scheme: the master creates <runtime>_clone and the secret alternates
# between the two, so the login a process holds stays valid for a whole rotation period after the secret moves on.
SCHEMES = {"master": "single", "owner": "single", "runtime": "multi", "backup": "single", "drill": "single"}
DESCRIPTIONS = {
    "master": "RDS master login: creates and keeps the roles; serves nothing",
    "owner": "owns the schema; runs the migrations (the migration step only)",
    "runtime": "what the web tasks serve with: rows of the application's tables, nothing else",
    "backup": "the backup task's login: reads everything, writes nothing",
    "drill": "the restore drill's login: reads, and creates its scratch database",
}


@dataclass(frozen=True)
class Login:
    kind: str
    username: str
    secret_arn: pulumi.Output[str]
    scheme: str


class DatabaseLogins(pulumi.ComponentResource):
    """A Secrets Manager secret per database login (KMS, the secrets key): JSON engine, host, port, username,
    password, dbname, and for the multi-user scheme masterarn, the secret allowed to change it. The roles' first
    passwords come from pulumi_random; the migration step creates the roles with them, rotation owns them after."""

    def __init__(self, name: str, settings: DatabaseSettings, secrets: SecretsSettings, *, name_prefix: str,
                 kms_key_arn: pulumi.Input[str], host: pulumi.Input[str], port: pulumi.Input[int],
                 master_password: pulumi.Input[str], protect: bool, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("database", "DatabaseLogins"), name, None, opts)
        users = {"master": settings.username, "owner": settings.owner_role, "runtime": settings.runtime_role,
                 "backup": settings.backup_role, "drill": settings.drill_role}
        self.logins: dict[str, Login] = {}
        for kind, username in users.items():
            password = master_password if kind == "master" else random.RandomPassword(
                f"{name}-{kind}-password", length=40, special=True, override_special=DATABASE_PASSWORD_SPECIALS,
                min_special=2, opts=pulumi.ResourceOptions(parent=self)).result
            value = {"engine": "postgres", "host": host, "port": port, "username": username, "password": password,
                     "dbname": settings.db_name}
            if SCHEMES[kind] == "multi":
                value["masterarn"] = self.logins["master"].secret_arn
            secret = store(f"{name}-{kind}", name=f"{name_prefix}/database-{kind}", description=DESCRIPTIONS[kind],
                           value=pulumi.Output.json_dumps(value), kms_key_arn=kms_key_arn,
                           recovery_window_days=secrets.recovery_window_days, rotation=SCHEDULED,
                           tags={"DatabaseLogin": kind, "DatabaseUser": username},
                           opts=pulumi.ResourceOptions(parent=self, protect=protect))
            self.logins[kind] = Login(kind, username, secret.arn, SCHEMES[kind])
        self.register_outputs({f"{kind}_secret_arn": login.secret_arn for kind, login in self.logins.items()})
