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
from flask_limiter import HeaderNames, Limiter
from flask_limiter.util import get_remote_address

from webapp.cache import client_options

limiter = Limiter(key_func=get_remote_address, headers_enabled=True, in_memory_fallback_enabled=True,
                  swallow_errors=True, strategy="sliding-window-counter",
                  header_name_mapping={HeaderNames.LIMIT: "RateLimit-Limit",
                                       HeaderNames.REMAINING: "RateLimit-Remaining",
                                       HeaderNames.RESET: "RateLimit-Reset"},
                  retry_after="delta-seconds",
                  application_limits_exempt_when=lambda: request.endpoint == "health.liveness")


def per_address() -> str:
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
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
        app.config["RATELIMIT_STORAGE_OPTIONS"] = options
    else:
        app.config["RATELIMIT_STORAGE_URI"] = "memory://"  # development: one process, nothing shared

    @app.after_request
    def standard_headers(response):
        """Registered before the limiter's own hook, so it runs after it: RateLimit-Reset in seconds from now (the
        IETF draft), and Retry-After only where it means something (429)."""
        reset = response.headers.get("RateLimit-Reset")
        if reset is not None and reset.isdigit():
            response.headers["RateLimit-Reset"] = str(max(0, int(reset) - int(time.time())))
        if response.status_code != 429 and response.status_code != 503:
            response.headers.pop("Retry-After", None)
        return response

    # A new app presumes its storage alive (Flask-Limiter keeps the last app's verdict otherwise; a process serves
    # one app, the tests build many).
    limiter._storage_dead = False
    limiter.init_app(app)
