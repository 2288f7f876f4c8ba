#!/usr/bin/env bash
# A Docker engine for the image and compose tests: Debian's docker.io, started the way this world allows (no bridge,
# no iptables: containers use the host's network on loopback ports). Does nothing when an engine already answers.
#   bash deploy/docker-engine.sh start   start dockerd in the background unless one answers (as root)
#   bash deploy/docker-engine.sh stop    stop the dockerd this script started (CI, at the end of its run)
set -euo pipefail

state=${DOCKER_ENGINE_STATE:-/tmp/flask-aws-dockerd}
mkdir -p "$state"

case "${1:-}" in
start)
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: no Docker engine answers and only root can start one here; start dockerd (or your usual" \
             "engine) and run again" >&2
        exit 1
    fi
    command -v dockerd >/dev/null || { echo "error: dockerd is missing: apt-get install docker.io" >&2; exit 1; }
    dockerd --bridge=none --iptables=false --ip6tables=false >"$state/dockerd.log" 2>&1 &
    echo $! >"$state/dockerd.pid"
    for _ in $(seq 1 120); do
        if docker info >/dev/null 2>&1; then
            exit 0
        fi
        if ! kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null; then
            break
        fi
        sleep 0.25
    done
    echo "error: dockerd did not start; its log, $state/dockerd.log, ends with:" >&2
    tail -n 20 "$state/dockerd.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$state/dockerd.pid" ]; then
        pid=$(cat "$state/dockerd.pid")
        if kill "$pid" 2>/dev/null; then
            # dockerd stops its containers first (up to their stop timeouts); wait for it to be gone.
            for _ in $(seq 1 240); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.25
            done
        fi
        rm -f "$state/dockerd.pid"
    fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
