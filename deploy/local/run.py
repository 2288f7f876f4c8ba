"""The native runner: `make local` brings the self-hosted topology up on this machine (no Docker) and keeps it
until Ctrl-C; `make local-down` stops one left running from another shell.

    python -m deploy.local.run up [--instances 2] [--workers 2]
    python -m deploy.local.run down
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from deploy.local.topology import ROOT, LocalTopology, stop_from_state

POINTER = ROOT / ".local" / "current.json"


def up(instances: int, workers: int) -> int:
    if POINTER.exists():
        print(f"error: a local topology is already running ({POINTER}); `make local-down` first", file=sys.stderr)
        return 2
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    print("starting: PostgreSQL primary + replica, Redis, Gunicorn x", instances, "nginx ...", flush=True)
    topology = LocalTopology(instances=instances, workers=workers).start()
    POINTER.parent.mkdir(exist_ok=True)
    POINTER.write_text(json.dumps({"state": str(topology.directory / "state.json")}))
    try:
        print(f"up:\n{topology.describe()}\nCtrl-C (or `make local-down`) stops everything.", flush=True)
        while not stopping.wait(1):
            if not (topology.directory / "state.json").exists():  # `down` from another shell got there first
                break
    finally:
        topology.stop()
        POINTER.unlink(missing_ok=True)
        print("stopped", flush=True)
    return 0


def down() -> int:
    if not POINTER.exists():
        print("nothing is running", file=sys.stderr)
        return 0
    state = Path(json.loads(POINTER.read_text())["state"])
    if state.exists():
        for line in stop_from_state(state):
            print(line)
    POINTER.unlink(missing_ok=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.run", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start and keep running until Ctrl-C")
    start.add_argument("--instances", type=int, default=2, help="Gunicorn instances behind nginx")
    start.add_argument("--workers", type=int, default=2, help="workers per Gunicorn instance")
    commands.add_parser("down", help="stop what `up` started in another shell")
    args = parser.parse_args(argv)
    return up(args.instances, args.workers) if args.command == "up" else down()


if __name__ == "__main__":
    sys.exit(main())
