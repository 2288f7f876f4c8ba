"""Gunicorn settings, all from the environment (the container contract in docs/ARCHITECTURE.md).

gthread workers: the keep-alive setting only applies to them (sync workers ignore it), and it must outlast the
load balancer's idle timeout (60 s on the ALB) or the balancer reuses connections Gunicorn already closed: 502s.
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{_int('PORT', 8000)}"
worker_class = "gthread"
def available_cpus() -> int:
    """CPUs this container may use: the cgroup v2 quota when there is one (the host's count is not the task's
    share), else the CPUs the process may run on."""
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            return max(1, int(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else multiprocessing.cpu_count()


workers = _int("WEB_CONCURRENCY", max(2, available_cpus()))
threads = _int("GUNICORN_THREADS", 4)
keepalive = _int("GUNICORN_KEEPALIVE", 75)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 25)
# Workers are not recycled by default: a request count says nothing about memory, and at a few hundred requests per
# second a count of 2000 replaced every worker every few seconds (2.9x fewer requests per second measured). Memory is
# the guard (on ECS the task's hard limit replaces a leaking task); GUNICORN_MAX_REQUESTS sets a count where an
# application needs one, with 10 % jitter so the workers do not all restart together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 10)
# Heartbeat files on tmpfs: a slow or read-only disk must not make the arbiter think workers hang.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The app is created in each worker after the fork: no database or Redis connection is shared across processes.
preload_app = False
# Which peers may set X-Forwarded-* for Gunicorn itself; the app trusts PROXY_COUNT hops through ProxyFix.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Gunicorn's control socket (for `gunicornc`) defaults to a directory under the working directory, which is the
# image's read-only /app: every start logged an error. Off unless a path is given, on a writable volume (/tmp in the
# tasks): nothing in this deployment talks to it, and a socket nobody uses is one more thing to secure.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logger_class = "webapp.access_log.JsonLogger"  # JSON lines: one per request, and Gunicorn's own messages


def post_worker_init(worker):
    """Headers and body in one write, so a worker killed mid-response never leaves nginx a half-sent answer
    it cannot retry (webapp/single_write.py); Gunicorn's own error answers as JSON (webapp/gunicorn_errors.py)."""
    from webapp import gunicorn_errors, single_write

    single_write.install()
    gunicorn_errors.install()
