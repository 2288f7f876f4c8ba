#!/bin/sh
# The container's (and the native runner's) one way to start: check the configuration, run the locked migration
# when asked (RUN_MIGRATIONS=true; safe with many containers starting at once), then become Gunicorn.
set -eu
cd "$(dirname "$0")"

python -m webapp.preflight

if [ "${RUN_MIGRATIONS:-false}" = "true" ]; then
    flask --app webapp db upgrade
fi

exec gunicorn --config gunicorn.conf.py "webapp:create_app()"
