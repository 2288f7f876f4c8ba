#!/bin/sh
# The read replica's start: on an empty data directory, copy the primary with pg_basebackup (which also writes the
# standby settings, -R), then become a hot standby streaming from it. Runs as the postgres user, once compose has
# seen the primary healthy.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h "${PRIMARY_HOST:-db}" -p "${PRIMARY_PORT:-5432}" \
        -U replicator -D "$PGDATA" -R -X stream --checkpoint=fast
    chmod 700 "$PGDATA"
fi
exec postgres "$@"
