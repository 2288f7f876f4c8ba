"""Rate limits shared by every worker, instance and task: the `limits` library (the engine under Flask-Limiter, by
the same maintainers) counting in the cache's Redis, with its TLS and rotating AUTH token. Two limits: every request
of a client address (after ProxyFix: the client, not the load balancer), counted before authentication so a flood
of bad tokens is limited too; and every write per token. A 429 is JSON in the API's error shape with Retry-After and
the IETF RateLimit-Limit / -Remaining / -Reset headers.

Why `limits` directly and not Flask-Limiter on top of it: Flask-Limiter resolved, filtered and bound its limits
again on every request, which cost a cached read more than the Redis round trip itself (1.9 ms against 0.84 ms in
the test client; docs/benchmarks.md). Here each request is one sliding-window-counter hit per limit.

When Redis is down or hangs (at most LIMITER_TIMEOUT_SECONDS), the limits count in this process's memory for
RETRY_SECONDS, then Redis is tried again: the API keeps serving, each process limiting on its own, and the outage
is logged once (and its end once). On AWS the WAF's rate rule is the first line, these the fine one; self-hosted,
nginx's limit_req."""

from __future__ import annotations

import functools
import logging
import threading
import time

import redis
from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse_many, storage, strategies
from werkzeug.exceptions import TooManyRequests

from webapp.cache import client_options

log = logging.getLogger(__name__)
LIMITER_TIMEOUT_SECONDS = 0.25  # every request waits on the limiter: a hanging Redis costs at most this, once
RETRY_SECONDS = 10


class RateLimits:
    """One app's limits and where they count."""

    def __init__(self, app: Flask):
        config = app.config
        self.enabled = config["RATE_LIMITS_ENABLED"]
        self.per_address = parse_many(config["RATE_LIMIT_PER_ADDRESS"])
        self.per_token = parse_many(config["RATE_LIMIT_WRITES"])
        if config["REDIS_URL"]:
            with app.app_context():
                options = client_options(config)
            options.pop("decode_responses", None)
            wait = min(config["REDIS_TIMEOUT_SECONDS"], LIMITER_TIMEOUT_SECONDS)
            options.update(socket_timeout=wait, socket_connect_timeout=wait)
            self.shared = strategies.SlidingWindowCounterRateLimiter(
                storage.RedisStorage(config["REDIS_URL"], key_prefix="ratelimit", **options))
        else:
            self.shared = None  # development: one process, nothing to share
        self.local = strategies.SlidingWindowCounterRateLimiter(storage.MemoryStorage())
        self.local_until = 0.0
        self.lock = threading.Lock()

    def check(self, items: list[RateLimitItem], *identifiers: str) -> None:
        """Count one hit against each limit; a 429 for the first one already reached."""
        counter = self.shared if self.shared is not None and time.monotonic() >= self.local_until else self.local
        try:
            for item in items:
                if not counter.hit(item, *identifiers):
                    self.refuse(counter, item, identifiers)
        except (redis.RedisError, OSError) as err:
            self.shared_failed(err)
            return self.check(items, *identifiers)
        if counter is self.shared and self.local_until:
            with self.lock:
                if self.local_until:
                    self.local_until = 0.0
                    log.warning("rate limits counted in Redis again")
        return None

    def shared_failed(self, err: Exception) -> None:
        with self.lock:
            first = not self.local_until
            self.local_until = time.monotonic() + RETRY_SECONDS
        if first:
            log.warning("rate limit storage unreachable: counting in each process until it answers",
                        extra={"error": str(err)})

    @staticmethod
    def refuse(counter, item: RateLimitItem, identifiers: tuple) -> None:
        wait = max(1, int(counter.get_window_stats(item, *identifiers).reset_time - time.time()))
        g.rate_limit_headers = {"RateLimit-Limit": str(item.amount), "RateLimit-Remaining": "0",
                                "RateLimit-Reset": str(wait)}
        raise TooManyRequests(f"rate limit of {item} reached; retry after the Retry-After seconds", retry_after=wait)


def writes(view):
    """A write: also counted per token (after webapp.auth has named it)."""
    @functools.wraps(view)
    def limited(*args, **kwargs):
        limits = current_app.extensions["rate_limits"]
        if limits.enabled:
            limits.check(limits.per_token, "token", g.get("token_name", ""))
        return view(*args, **kwargs)

    return limited


def init_limits(app: Flask) -> None:
    limits = app.extensions["rate_limits"] = RateLimits(app)

    @app.before_request
    def per_address():
        if limits.enabled:
            limits.check(limits.per_address, "address", request.remote_addr or "")

    @app.after_request
    def rate_limit_headers(response):
        response.headers.update(g.pop("rate_limit_headers", {}))
        return response
