"""Read-through cache in Redis. Redis is an optimisation: when it is down the application answers uncached, and
stops trying for a few seconds so every request does not pay the timeout."""

from __future__ import annotations

import json
import logging
import threading
import time

import redis
from flask import current_app

from webapp.credentials import RedisToken

log = logging.getLogger(__name__)
_clients_lock = threading.Lock()


def dumps(value) -> str:
    """The JSON text the cache stores and the API answers with, byte for byte."""
    return json.dumps(value, separators=(",", ":"))


class Cache:
    def __init__(self):
        self._down_until = 0.0

    @property
    def client(self) -> redis.Redis | None:
        """This app's Redis client (one connection pool per process, made on first use after the fork)."""
        extensions = current_app.extensions
        client = extensions.get("redis_client", False)
        if client is False:
            with _clients_lock:
                url = current_app.config.get("REDIS_URL")
                client = redis.Redis.from_url(url, **client_options(current_app.config)) if url else None
                extensions.setdefault("redis_client", client)
                client = extensions["redis_client"]
        return client

    def _usable(self) -> redis.Redis | None:
        client = self.client
        if client is None or time.monotonic() < self._down_until:
            return None
        return client

    def _failed(self, err: Exception) -> None:
        self._down_until = time.monotonic() + 5
        log.warning("redis unavailable, serving uncached for 5 s", extra={"error": str(err)})
        token = current_app.extensions.get("redis_token")
        if isinstance(err, redis.AuthenticationError) and token is not None:
            token.refresh("Redis refused the AUTH token")  # the next connection, in 5 s, takes the new one

    def get(self, key: str) -> str | None:
        """The cached JSON text (served as is: no decoding and re-encoding on a hit), or None."""
        client = self._usable()
        if client is None:
            return None
        try:
            return client.get(key)
        except redis.RedisError as err:
            self._failed(err)
            return None

    def set(self, key: str, value, *, only_if_absent: bool = False, ttl: int | None = None) -> str:
        """Cache a value as JSON text; return that text. Reads populate with `only_if_absent`, so a read that
        raced a write (or came from a lagging replica) never overwrites what the write stored."""
        text = dumps(value)
        client = self._usable()
        if client is None:
            return text
        try:
            client.set(key, text, ex=ttl or current_app.config["CACHE_TTL_SECONDS"], nx=only_if_absent)
        except redis.RedisError as err:
            self._failed(err)
        return text

    def store(self, key: str, value) -> None:
        """After a write: store the fresh value (None for a deleted item), tried even while this process thinks
        Redis is down, since another process may still be reading it."""
        self._write(lambda client: client.set(key, dumps(value),
                                              ex=current_app.config["CACHE_TTL_SECONDS"]))

    def incr(self, key: str) -> None:
        self._write(lambda client: client.incr(key))

    def _write(self, operation) -> None:
        client = self.client
        if client is None:
            return
        try:
            operation(client)
        except redis.RedisError as err:
            self._failed(err)

    def version(self, key: str) -> str:
        """A counter that writes bump, so cached list pages from before a write are never read again."""
        client = self._usable()
        if client is None:
            return "0"
        try:
            return client.get(key) or "0"
        except redis.RedisError as err:
            self._failed(err)
            return "0"

    def ping(self) -> bool:
        client = self.client
        if client is None:
            raise RuntimeError("not configured")
        return bool(client.ping())


def client_options(config) -> dict:
    """redis-py's options: timeouts; the AUTH token from REDIS_AUTH_SECRET_ARN or REDIS_AUTH_TOKEN, asked for at
    each new connection; over TLS (rediss://), the server's certificate and host name verified against
    REDIS_CA_CERTS or the system's CAs."""
    timeout = config["REDIS_TIMEOUT_SECONDS"]
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "health_check_interval": 30,
               "decode_responses": True}
    token = RedisToken(config["REDIS_AUTH_SECRET_ARN"], config["REDIS_AUTH_TOKEN"])
    if token.secret_id or token.get_credentials()[0]:
        options["credential_provider"] = token
        current_app.extensions["redis_token"] = token
    if config["REDIS_URL"].startswith("rediss://"):
        options.update(ssl_cert_reqs="required", ssl_check_hostname=True,
                       ssl_ca_certs=config["REDIS_CA_CERTS"] or None)
    return options


cache = Cache()
