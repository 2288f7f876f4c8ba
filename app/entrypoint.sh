#!/bin/sh
# The container's (and the native runner's) one way to start: check the configuration, run the locked migration
# when asked (RUN_MIGRATIONS=true/1/yes; safe with many containers starting at once), then become Gunicorn, or the
# command given instead (e.g. `docker run IMAGE flask --app webapp shell`).
set -eu
cd "$(dirname "$0")"

python -m webapp.preflight

case "$(printf '%s' "${RUN_MIGRATIONS:-false}" | tr '[:upper:]' '[:lower:]')" in
    1|true|yes|on) flask --app webapp db upgrade ;;
    0|false|no|off|"") ;;
    *) echo "error: RUN_MIGRATIONS=${RUN_MIGRATIONS} is not true or false" >&2; exit 2 ;;
esac

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
exec gunicorn --config gunicorn.conf.py "webapp:create_app()"
