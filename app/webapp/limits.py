"""Rate limits shared by every worker, instance and task: Flask-Limiter with Redis as its storage (the cache's
Redis, with the same TLS and rotating AUTH token). Two limits: every request from a client address (after ProxyFix:
the client, not the load balancer), counted before authentication so a flood of bad tokens is limited too; and every
write per token. /health is exempt (the load balancer's). A 429 is JSON in the API's error shape with Retry-After and
the IETF RateLimit-Limit / -Remaining / -Reset headers.

When Redis is down the limits fall back to this process's memory (the service keeps answering, each process
limiting on its own) and the change is logged once; Redis is tried again every few seconds. On AWS the WAF's rate
rule is the first line, these the fine one; self-hosted, nginx's limit_req."""

from __future__ import annotations

import time

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from webapp.cache import client_options

# No headers on every answer: Flask-Limiter reads the window back from Redis to write them, a second round trip per
# request (a third of a cached read's time); the 429 carries them (standard_headers below).
limiter = Limiter(key_func=get_remote_address, headers_enabled=False, in_memory_fallback_enabled=True,
                  swallow_errors=True, strategy="sliding-window-counter")


@limiter.request_filter
def load_balancer_check() -> bool:
    """/health is the load balancer's: never limited, and not even looked at by the limiter."""
    return request.path == "/health"


LIMITER_TIMEOUT_SECONDS = 0.25


def per_address() -> str:
    """Read per request: the limiter is one object, and each app (one per process; many in the tests) has its own."""
    from flask import current_app

    return current_app.config["RATE_LIMIT_PER_ADDRESS"]


def per_token() -> str:
    from flask import current_app

    return current_app.config["RATE_LIMIT_WRITES"]


def token_key() -> str:
    return "token:" + g.get("token_name", get_remote_address())


writes = limiter.limit(per_token, key_func=token_key)  # applied after the token is checked (webapp.auth)


def init_limits(app: Flask) -> None:
    app.config["RATELIMIT_ENABLED"] = app.config["RATE_LIMITS_ENABLED"]
    app.config["RATELIMIT_APPLICATION"] = per_address  # every request of a client address, all routes together
    app.config["RATELIMIT_KEY_PREFIX"] = "ratelimit"
    if app.config["REDIS_URL"]:
        with app.app_context():
            options = client_options(app.config)
        options.pop("decode_responses", None)
        # Every request waits on the limiter: a Redis that hangs costs at most this once, then the limits fall back
        # to memory (the cache's own timeout may be longer).
        wait = min(app.config["REDIS_TIMEOUT_SECONDS"], LIMITER_TIMEOUT_SECONDS)
        options.update(socket_timeout=wait, socket_connect_timeout=wait)
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
        app.config["RATELIMIT_STORAGE_OPTIONS"] = options
    else:
        app.config["RATELIMIT_STORAGE_URI"] = "memory://"  # development: one process, nothing shared

    @app.after_request
    def standard_headers(response):
        """On a 429: the limit that was reached as the IETF draft's RateLimit-Limit / -Remaining / -Reset (seconds
        from now) and Retry-After."""
        breached = limiter.current_limit if response.status_code == 429 else None
        if breached is not None:
            wait = max(1, int(breached.reset_at - time.time()))
            response.headers.update({"RateLimit-Limit": str(breached.limit.amount), "RateLimit-Remaining": "0",
                                     "RateLimit-Reset": str(wait), "Retry-After": str(wait)})
        return response

    # A new app presumes its storage alive (Flask-Limiter keeps the last app's verdict otherwise; a process serves
    # one app, the tests build many).
    limiter._storage_dead = False
    limiter.init_app(app)
