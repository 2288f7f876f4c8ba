#!/bin/sh
# Initialise an empty data directory as the official image does (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, then
# the scripts in /docker-entrypoint-initdb.d against a server listening on a socket only), then become the server.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --no-locale >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    export PGHOST=/tmp PGUSER="${POSTGRES_USER:-postgres}"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
    db=${POSTGRES_DB:-$PGUSER}
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 -d postgres -v db="$db" >/dev/null <<'SQL'
CREATE DATABASE :"db";
SQL
    fi
    for script in /docker-entrypoint-initdb.d/*.sh; do
        [ -e "$script" ] && sh "$script"
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGHOST PGUSER
fi
if [ "${1:-}" = postgres ]; then
    shift
    exec postgres -D "$PGDATA" "$@"
fi
exec "$@"
