#!/bin/sh
# The role the replica streams with (REPLICATION and LOGIN only: it reads no table) and the one pg_hba line that lets
# it connect. The postgres image runs this once, when it initialises an empty data directory
# (/docker-entrypoint-initdb.d); on a database made before the replica existed, run it once by hand:
#   docker compose exec db sh /docker-entrypoint-initdb.d/replication-role.sh
# Running it again changes nothing (the password is set again).
set -eu
psql -v ON_ERROR_STOP=1 -v password="$REPLICATION_PASSWORD" --username "$POSTGRES_USER" --dbname postgres <<'SQL'
SELECT 'CREATE ROLE replicator WITH REPLICATION LOGIN' WHERE NOT EXISTS (
    SELECT FROM pg_roles WHERE rolname = 'replicator')
\gexec
ALTER ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SQL
line="host replication replicator all scram-sha-256"
grep -qxF "$line" "$PGDATA/pg_hba.conf" || echo "$line" >>"$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "SELECT pg_reload_conf()" >/dev/null
