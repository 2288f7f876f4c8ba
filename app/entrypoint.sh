#!/bin/sh
# The container's (and the native runner's) one way to start: check the configuration, then become Gunicorn, or the
# command given instead (`flask --app webapp db prepare` in the migration step, `flask --app webapp backup create`
# in the backup task, `flask --app webapp shell`, ...). Migrations are never run here: the migration step runs them
# with the owner's credentials, which a serving container does not get.
set -eu
cd "$(dirname "$0")"

if [ "$#" -gt 0 ]; then
    python -m webapp.preflight
    exec "$@"
fi
python -m webapp.preflight --serve
exec gunicorn --config gunicorn.conf.py "webapp:create_app()"
