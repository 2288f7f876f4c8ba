"""Application speed against the real Gunicorn config, with a minimal Flask app as the reference in the same run.

The reference is the best the server can do: the smallest Flask app under Gunicorn's own defaults for the same
worker class and counts (no project config: no recycling, no access log). Targets (issue 16): the app's /health
>= 0.85x its requests/s; a cached GET of the API >= 0.6x; an uncached GET from PostgreSQL >= 0.3x; p99 latency
reported. Everything on loopback, bounded in time.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.wrk import wrk
from deploy.local.servers import PostgresServer, RedisServer, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
DURATION = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
WORKERS, THREADS = "2", "4"


@contextmanager
def gunicorn(app_spec: str, env: dict, cwd: Path, project_config: bool = True):
    """Gunicorn serving `app_spec`: with the project's config (app/gunicorn.conf.py, the environment as the
    container gets it), or with Gunicorn's own defaults and only the same worker class and counts."""
    port = free_port()
    env = {**os.environ, **env, "PORT": str(port), "BIND_HOST": "127.0.0.1", "WEB_CONCURRENCY": WORKERS,
           "GUNICORN_THREADS": THREADS, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT / "app")}  # the config's JSON access logger lives in webapp
    config = (["--config", str(ROOT / "app" / "gunicorn.conf.py")] if project_config else
              ["--worker-class", "gthread", "--workers", WORKERS, "--threads", THREADS,
               "--bind", f"127.0.0.1:{port}"])
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", *config, app_spec], cwd=cwd, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{base}/health", timeout=1).ok, 60, app_spec)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


UNREACHED_LIMITS = {"RATE_LIMIT_PER_ADDRESS": "1000000000 per minute",
                    "RATE_LIMIT_WRITES": "1000000000 per minute"}


def main() -> int:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; gunicorn {WORKERS} gthread workers x {THREADS} threads; wrk -t2 "
          f"-c{CONNECTIONS} -d{DURATION}s, median of {ROUNDS} interleaved rounds")
    primary = PostgresServer.create(durable=True)
    redis_server = RedisServer().start()
    try:
        primary.create_database("bench")
        env = {"APP_ENV": "staging", "SECRET_KEY": "b" * 48, "DATABASE_HOST": "127.0.0.1",
               "DATABASE_PORT": str(primary.port), "DATABASE_NAME": "bench", "DATABASE_USER": "postgres",
               "DATABASE_PASSWORD": primary.password, "LOG_LEVEL": "INFO",
               # One load generator is one client address: limits it never reaches, so the limiter's cost (a
               # Redis round trip per request) is measured and its refusals are not.
               **UNREACHED_LIMITS}
        subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "db", "upgrade"], cwd=ROOT / "app",
                       env={**os.environ, **env}, check=True, capture_output=True)
        made = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "tokens", "create", "bench"],
                              cwd=ROOT / "app", env={**os.environ, **env}, check=True, capture_output=True, text=True)
        token = made.stdout.strip().splitlines()[-1]
        rounds: dict[str, list[dict]] = {}
        # All three servers up at once, measured in interleaved rounds: noise on a shared 2-core machine hits
        # every scenario alike, and the median of the rounds is reported.
        with gunicorn("minimal_app:app", {}, ROOT / "bench", project_config=False) as minimal, \
                gunicorn("webapp:create_app()", {**env, "REDIS_URL": redis_server.url()}, ROOT / "app") as cached, \
                gunicorn("webapp:create_app()", env, ROOT / "app") as uncached:  # no Redis: every GET reads PG
            note = requests.post(f"{cached}/api/notes", json={"title": "bench", "body": "x" * 200}, timeout=5,
                                 headers={"Authorization": f"Bearer {token}"}).json()
            requests.get(f"{cached}/api/notes/{note['id']}", timeout=5)  # warm the cache
            scenarios = {"minimal /health": f"{minimal}/health", "app /health": f"{cached}/health",
                         "app cached GET /api/notes/<id>": f"{cached}/api/notes/{note['id']}",
                         "app uncached GET /api/notes/<id>": f"{uncached}/api/notes/{note['id']}"}
            for _ in range(ROUNDS):
                for name, url in scenarios.items():
                    rounds.setdefault(name, []).append(wrk(url, DURATION, CONNECTIONS))
    finally:
        redis_server.destroy()
        primary.destroy()

    def median(name, key):
        return statistics.median(r[key] for r in rounds[name])

    results = {name: {"rps": median(name, "rps"), "p50": median(name, "p50"), "p99": median(name, "p99"),
                      "errors": sum(r["errors"] for r in runs)} for name, runs in rounds.items()}
    reference = results["minimal /health"]["rps"]
    targets = {"app /health": 0.85, "app cached GET /api/notes/<id>": 0.6, "app uncached GET /api/notes/<id>": 0.3}
    print("| endpoint | requests/s | x minimal | target | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for name, r in results.items():
        ratio = r["rps"] / reference
        target = targets.get(name)
        met = target is None or ratio >= target
        ok = ok and met and r["errors"] == 0
        print(f"| {name} | {r['rps']:.0f} | {ratio:.2f} | {f'>= {target}' if target else 'reference'}"
              f"{'' if met else ' MISSED'} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
