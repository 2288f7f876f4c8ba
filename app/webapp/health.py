"""Health checks. /health is the load balancer's liveness probe: no dependency is called, so a database blip never
takes the fleet out, and it says nothing but "ok". /health/detailed is for monitoring, with an API token (its errors
name hosts and ports): every dependency, each with its own timeout."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import psutil
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from webapp.auth import token_or_unavailable
from webapp.cache import cache
from webapp.database import db

bp = Blueprint("health", __name__)
# Checks run in their own threads so that a hung dependency costs its timeout, not the worker (no SIGALRM: it
# does not work in threaded workers).
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")
_lock = threading.Lock()


@bp.get("/health")
def liveness():
    return jsonify(status="ok")


def _database_down():
    return jsonify(status="fail", failed=["database"], checks={}), 503


@bp.get("/health/detailed")
@token_or_unavailable(_database_down)
def detailed():
    # One run per few seconds per process, whatever the number of callers: a storm of health checks costs the
    # database one query per process per period.
    ttl = current_app.config["HEALTH_CACHE_SECONDS"]
    cached = current_app.extensions.setdefault("health_cache", {"at": 0.0, "result": None})
    with _lock:
        if cached["result"] is None or time.monotonic() - cached["at"] >= ttl:
            cached["result"] = run_checks(current_app._get_current_object())
            cached["at"] = time.monotonic()
        result = cached["result"]
    return jsonify(result), 200 if result["status"] == "ok" else 503


def run_checks(app) -> dict:
    timeout = app.config["HEALTH_CHECK_TIMEOUT_SECONDS"]
    checks = {"database": lambda: _database(app, None)}
    for name in app.config["DATABASE_REPLICAS"]:
        checks[f"database:{name}"] = lambda name=name: _database(app, name)
    checks["redis"] = lambda: _redis(app)
    checks["disk"] = lambda: _disk(app)
    checks["memory"] = lambda: _memory(app)
    started = {name: (time.perf_counter(), _executor.submit(fn)) for name, fn in checks.items()}
    results = {}
    deadline = time.perf_counter() + timeout
    for name, (start, future) in started.items():
        try:
            detail = future.result(timeout=max(0.0, deadline - time.perf_counter()))
            results[name] = {"ok": True, **(detail or {})}
        except FutureTimeout:
            results[name] = {"ok": False, "error": f"timed out after {timeout} s"}
        except Exception as err:  # noqa: BLE001 a failing dependency is a result, not an error
            results[name] = {"ok": False, "error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
        results[name]["duration_ms"] = round((time.perf_counter() - start) * 1000, 1)
    failed = [name for name, r in results.items() if not r["ok"]]
    return {"status": "fail" if failed else "ok", "failed": failed, "checks": results}


def _database(app, bind: str | None) -> dict:
    """One round trip; a pooled connection the server closed since its last use (no ping at checkout) is not the
    server being down: once more on a fresh one."""
    with app.app_context():
        engine = db.engines[bind]
        try:
            _select_one(engine)
        except DBAPIError as err:
            if not err.connection_invalidated:
                raise
            _select_one(engine)
    return {}


def _select_one(engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis(app) -> dict:
    with app.app_context():
        if not app.config.get("REDIS_URL"):
            return {"skipped": "REDIS_URL not configured"}
        cache.ping()
    return {}


def _disk(app) -> dict:
    usage = psutil.disk_usage(app.config["HEALTH_DISK_PATH"])
    limit = app.config["HEALTH_DISK_MAX_PERCENT"]
    if usage.percent > limit:
        raise RuntimeError(f"{usage.percent}% used, above {limit}%")
    return {"percent": usage.percent}


def _memory(app) -> dict:
    memory = psutil.virtual_memory()
    limit = app.config["HEALTH_MEMORY_MAX_PERCENT"]
    if memory.percent > limit:
        raise RuntimeError(f"{memory.percent}% used, above {limit}%")
    return {"percent": memory.percent}
