"""The self-hosted topology under load (issue 5), loopback only, bounded in time.

1. Throughput: wrk through nginx (HTTPS, keep-alive) and directly against the one Gunicorn instance behind it,
   same workers. Goal: through nginx >= 0.8x direct.
2. Faults under sustained load (2 instances): kill -9 one Gunicorn worker, then one whole instance, then restart
   Redis, the PostgreSQL replica and the primary; then stop the primary for a phase and start it again. Failed
   requests are counted per phase. Goals: no failed idempotent request in any phase, every acknowledged create
   readable afterwards, no failed create committed anyway; with the primary down, writes refused fast with 503
   and accepted again within seconds of its start.
"""

from __future__ import annotations

import os
import platform
import random
import signal
import statistics
import sys
import threading
import time
from collections import Counter

import requests

from bench.app import UNREACHED_LIMITS
from bench.wrk import wrk
from deploy.local.topology import LocalTopology

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PHASE_SECONDS = float(os.environ.get("BENCH_PHASE_SECONDS", "6"))
CLIENTS = 8


def throughput() -> list[str]:
    topology = LocalTopology(instances=1, workers=2, extra_env=UNREACHED_LIMITS,
                             nginx_rate_per_second=1_000_000).start()
    try:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(topology.certificate)
        session.headers.update(topology.auth)
        note = session.post(f"{topology.url}/api/notes", json={"title": "bench", "body": "x" * 200}, timeout=5).json()
        direct = f"http://127.0.0.1:{topology.gunicorns[0].port}"
        paths = {"/health": "/health", "cached GET /api/notes/<id>": f"/api/notes/{note['id']}"}
        runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(ROUNDS):  # interleaved, medians reported
            for name, path in paths.items():
                runs.setdefault((name, "direct"), []).append(wrk(f"{direct}{path}", SECONDS))
                runs.setdefault((name, "nginx"), []).append(wrk(f"{topology.url}{path}", SECONDS))
    finally:
        topology.stop()
    lines = ["| endpoint | direct req/s | via nginx (HTTPS) req/s | ratio | target | direct p50/p99 ms | "
             "nginx p50/p99 ms | errors |", "|---|---|---|---|---|---|---|---|"]
    for name in paths:
        d, n = ({k: statistics.median(r[k] for r in runs[(name, via)]) for k in ("rps", "p50", "p99")}
                for via in ("direct", "nginx"))
        errors = sum(r["errors"] for via in ("direct", "nginx") for r in runs[(name, via)])
        ratio = n["rps"] / d["rps"]
        lines.append(f"| {name} | {d['rps']:.0f} | {n['rps']:.0f} | {ratio:.2f} | >= 0.8"
                     f"{'' if ratio >= 0.8 else ' MISSED'} | {d['p50']:.1f}/{d['p99']:.1f} | "
                     f"{n['p50']:.1f}/{n['p99']:.1f} | {errors} |")
    return lines


class Load:
    """Clients reading known notes (idempotent) and creating new ones (not), counting outcomes per phase."""

    def __init__(self, topology: LocalTopology, note_ids: list[int]):
        self.topology, self.note_ids = topology, note_ids
        self.phase = "warm-up"
        self.counts: Counter = Counter()
        self.reasons: Counter = Counter()
        self.acknowledged: list[int] = []
        self.failed_titles: list[str] = []  # creates answered with an error: none of them may exist afterwards
        self.refused_ms: dict[str, list[float]] = {}  # each attempt answered 503, by phase
        self.first_write_ok: dict[str, float] = {}
        self.retries = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.topology.certificate)
        session.headers.update(self.topology.auth)
        sent = 0
        while not self.stop.is_set():
            write = rng.random() < 0.2
            kind = "write" if write else "read"
            sent += 1
            title = f"load {seed}-{sent}"
            try:
                if write:
                    response = self.create(session, title)
                    ok = response.status_code == 201
                    with self.lock:
                        if ok:
                            self.acknowledged.append(response.json()["id"])
                            self.first_write_ok.setdefault(self.phase, time.monotonic())
                        else:
                            self.failed_titles.append(title)
                else:
                    response = session.get(f"{self.topology.url}/api/notes/{rng.choice(self.note_ids)}", timeout=10)
                    ok = response.status_code == 200
                reason = f"HTTP {response.status_code}"
            except requests.RequestException as err:
                ok, reason = False, type(err).__name__
                if write:
                    with self.lock:
                        self.failed_titles.append(title)
            with self.lock:
                self.counts[(self.phase, kind, "ok" if ok else "failed")] += 1
                if not ok:
                    self.reasons[(self.phase, kind, reason)] += 1


    def create(self, session: requests.Session, title: str) -> requests.Response:
        """A create as a careful client sends it: with an Idempotency-Key, retried (up to 3 times, after at most
        the Retry-After it was given, capped at 1 s) on a 5xx or a lost connection. The retry of a create whose
        COMMIT happened but whose answer was lost (a worker killed at that moment) gets the first answer."""
        for attempt in range(3):
            sent = time.monotonic()
            try:
                response = session.post(f"{self.topology.url}/api/notes", json={"title": title}, timeout=10,
                                        headers={"Idempotency-Key": title.replace(" ", "-")})
            except requests.ConnectionError:
                if attempt == 2:
                    raise
                continue
            if response.status_code == 503:
                with self.lock:
                    self.refused_ms.setdefault(self.phase, []).append((time.monotonic() - sent) * 1000)
            if response.status_code < 500 or attempt == 2:
                return response
            with self.lock:
                self.retries += 1
            time.sleep(min(1.0, float(response.headers.get("Retry-After", "1"))))
        return response


def faults() -> list[str]:
    topology = LocalTopology(instances=2, workers=2,
                             extra_env={"REPLICA_RETRY_SECONDS": "1", **UNREACHED_LIMITS},
                             nginx_rate_per_second=1_000_000).start()
    try:
        setup = requests.Session()
        setup.trust_env = False
        setup.verify = str(topology.certificate)
        setup.headers.update(topology.auth)
        ids = [setup.post(f"{topology.url}/api/notes", json={"title": f"seed {i}"}, timeout=5).json()["id"]
               for i in range(20)]
        topology.replica.wait_for_replay(topology.primary.wal_position())
        load = Load(topology, ids)
        threads = [threading.Thread(target=load.client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()

        def phase(name, action):
            load.phase = name
            action()
            time.sleep(PHASE_SECONDS)  # sustained load through the fault (a measurement window, not a readiness wait)

        first, second = topology.gunicorns
        phase("baseline", lambda: None)
        phase("kill -9 one worker", lambda: os.kill(first.worker_pids()[0], signal.SIGKILL))
        phase("kill one instance", lambda: second.kill(signal.SIGKILL))
        phase("restart Redis", lambda: (topology.redis.stop(), topology.redis.start()))
        # No ping before a pooled connection is used (issue 16): every pooled connection to a restarted server is dead
        # and meets its next request, which runs once more on a fresh connection (reads, and writes before COMMIT).
        phase("restart the PostgreSQL replica", topology.replica.restart)
        phase("restart the PostgreSQL primary", topology.primary.restart)
        phase("PostgreSQL primary down", topology.primary.stop)
        started = time.monotonic()
        phase("PostgreSQL primary started again", topology.primary.start)
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        topology.replica.wait_for_replay(topology.primary.wal_position())
        lost = [i for i in load.acknowledged
                if setup.get(f"{topology.url}/api/notes/{i}", timeout=10).status_code != 200]
        with topology.primary.connect("app") as connection:
            committed_anyway = connection.execute("SELECT count(*) FROM notes WHERE title = ANY(%s)",
                                                  (load.failed_titles,)).fetchone()[0]
        error_log = (topology.directory / "nginx" / "error.log").read_text().splitlines()
    finally:
        topology.stop()
    lines = ["| phase | reads ok | reads failed | writes ok | writes failed |", "|---|---|---|---|---|"]
    for name in ("baseline", "kill -9 one worker", "kill one instance", "restart Redis",
                 "restart the PostgreSQL replica", "restart the PostgreSQL primary", "PostgreSQL primary down",
                 "PostgreSQL primary started again"):
        c = load.counts
        lines.append(f"| {name} | {c[(name, 'read', 'ok')]} | {c[(name, 'read', 'failed')]} | "
                     f"{c[(name, 'write', 'ok')]} | {c[(name, 'write', 'failed')]} |")
    failed_reads = sum(v for (p, kind, outcome), v in load.counts.items() if kind == "read" and outcome == "failed")
    down_ms = sorted(load.refused_ms.get("PostgreSQL primary down", [0.0]))
    back = load.first_write_ok.get("PostgreSQL primary started again")
    lines.append(f"\nacknowledged creates: {len(load.acknowledged)}, not readable afterwards: {len(lost)}; "
                 f"failed creates committed anyway: {committed_anyway} (goal 0); retries: {load.retries}; "
                 f"failed idempotent requests: {failed_reads} (goal 0)")
    lines.append(f"primary down: creates refused in {statistics.median(down_ms):.0f} ms median, "
                 f"{down_ms[int(0.99 * (len(down_ms) - 1))]:.0f} ms p99; first acknowledged create "
                 + (f"{back - started:.1f} s after the start" if back else "never (MISSED)"))
    lines += [f"  {phase} / {kind}: {count} x {reason}" for (phase, kind, reason), count in load.reasons.items()]
    if os.environ.get("BENCH_NGINX_ERRORS"):
        lines += ["nginx error log (upstream lines):"] + [f"  {line}" for line in error_log if "upstream" in line][-20:]
    return lines


def main() -> int:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; wrk -t2 -c16 -d{SECONDS}s x {ROUNDS} rounds; faults: {CLIENTS} clients, "
          f"{PHASE_SECONDS:.0f} s per phase, 20 % writes")
    if os.environ.get("BENCH_ONLY") != "faults":
        print("\n".join(throughput()))
        print()
    print("\n".join(faults()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
