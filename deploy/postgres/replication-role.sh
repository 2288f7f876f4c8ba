#!/bin/sh
# Run once by the postgres image when it initialises an empty data directory (/docker-entrypoint-initdb.d): the role
# the replica streams with (REPLICATION and LOGIN only: it reads no table), and the one pg_hba line that lets it.
set -eu
psql -v ON_ERROR_STOP=1 -v password="$REPLICATION_PASSWORD" --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SQL
echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
