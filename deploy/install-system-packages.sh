#!/usr/bin/env bash
# Debian packages the tests and the benchmarks need (real servers, nginx, a Docker engine, load generator). Installs
# the missing ones (as root, or through sudo); lists them and exits 1 when it cannot.
set -euo pipefail

packages=()
command -v make >/dev/null || packages+=(make)
python3 -m venv --help >/dev/null 2>&1 || packages+=(python3-venv)
[ -x /usr/lib/postgresql/15/bin/postgres ] || packages+=(postgresql-15 postgresql-client-15)
command -v redis-server >/dev/null || packages+=(redis-server)
command -v nginx >/dev/null || packages+=(nginx)
command -v openssl >/dev/null || packages+=(openssl)
command -v shellcheck >/dev/null || packages+=(shellcheck)  # actionlint checks the workflows' run: scripts with it
# The image and compose tests (tests/container): a Docker engine, debootstrap for their base image, docker-compose.
command -v dockerd >/dev/null || packages+=(docker.io)
command -v debootstrap >/dev/null || packages+=(debootstrap)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || packages+=(docker-compose)
if [ "${1:-}" = "--bench" ]; then
    command -v wrk >/dev/null || packages+=(wrk)
fi
[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    run=()
elif command -v sudo >/dev/null; then
    run=(sudo)
else
    echo "error: missing Debian packages: ${packages[*]}; install them (apt-get install ${packages[*]})" >&2
    exit 1
fi
"${run[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
