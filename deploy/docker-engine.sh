#!/usr/bin/env bash
# A Docker engine for the image and compose tests: Debian's docker.io, started the way this world allows (no bridge,
# no iptables: containers use the host's network on loopback ports). Does nothing when an engine already answers.
#   bash deploy/docker-engine.sh start   start dockerd in the background unless one answers (as root)
#   bash deploy/docker-engine.sh stop    stop the dockerd this script started (CI, at the end of its run)
set -euo pipefail

state=${DOCKER_ENGINE_STATE:-/run/flask-aws-dockerd}

case "${1:-}" in
start)
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        if [ -S /var/run/docker.sock ]; then
            echo "error: a Docker engine runs but does not answer you (/var/run/docker.sock): join the docker group" \
                 "or run as root" >&2
        else
            echo "error: no Docker engine answers and only root can start one here; start dockerd (or your usual" \
                 "engine) and run again" >&2
        fi
        exit 1
    fi
    command -v dockerd >/dev/null || { echo "error: dockerd is missing: apt-get install docker.io" >&2; exit 1; }
    mkdir -p "$state" && chmod 700 "$state"
    dockerd --bridge=none --iptables=false --ip6tables=false >"$state/dockerd.log" 2>&1 &
    echo $! >"$state/dockerd.pid"
    for _ in $(seq 1 480); do  # up to 2 minutes: a first start on slow storage takes a while
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
    [ -f "$state/dockerd.pid" ] || exit 0
    pid=$(cat "$state/dockerd.pid")
    kill "$pid" 2>/dev/null || { rm -f "$state/dockerd.pid"; exit 0; }
    # dockerd stops its containers first (each within its stop timeout, at most 120 s here): wait, then insist.
    for _ in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$state/dockerd.pid"; exit 0; }
        sleep 0.25
    done
    echo "error: dockerd ($pid) did not stop within 150 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$state/dockerd.pid"
    exit 1
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
