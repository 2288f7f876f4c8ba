"""Credentials a running process re-reads: from AWS Secrets Manager, through AWS's caching client, when the
environment names a secret (DATABASE_SECRET_ARN, REDIS_AUTH_SECRET_ARN, SECRET_KEY_SECRET_ARN); from the environment
otherwise (DATABASE_USER/PASSWORD, REDIS_AUTH_TOKEN, SECRET_KEY).

Rotation changes a secret under a running process. The process keeps using what it has while the server accepts
it, and re-reads the secret when the server refuses it (a database or Redis login), or when the caching client's
refresh interval has passed (the Flask key set), instead of holding the value it started with.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

log = logging.getLogger(__name__)
# A refused login re-reads the secret at most this often per secret and process: a wrong secret must not turn into
# a storm of Secrets Manager calls.
MIN_REFRESH_SECONDS = 5.0


class CredentialsError(Exception):
    """A secret cannot be read or has the wrong shape; the message says which and what to check."""


class SecretStore:
    """One per process (made on first use, after Gunicorn's fork): AWS's caching client over one Secrets Manager
    client, and the values re-read on demand since (kept until the cache's own interval has passed)."""

    def __init__(self, refresh_seconds: int):
        import botocore.session
        from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

        # The region from the contract's AWS_REGION: botocore itself reads only AWS_DEFAULT_REGION, which ECS sets
        # but a container run elsewhere with the contract's variables (compose, docker run, a test) may not.
        self._client = botocore.session.get_session().create_client(
            "secretsmanager", region_name=os.environ.get("AWS_REGION") or None)
        self._cache = SecretCache(config=SecretCacheConfig(secret_refresh_interval=refresh_seconds),
                                  client=self._client)
        self._refresh_seconds = refresh_seconds
        self._refreshed: dict[str, float] = {}
        self._fresh: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def text(self, secret_id: str) -> str:
        fresh = self._fresh.get(secret_id)
        if fresh and time.monotonic() < fresh[1]:
            return fresh[0]
        try:
            value = self._cache.get_secret_string(secret_id)
        except Exception as err:  # noqa: BLE001 botocore's errors, whatever their class: one clear line
            raise CredentialsError(f"cannot read secret {secret_id}: {_reason(err)}. Check the task role may "
                                   "secretsmanager:GetSecretValue it and kms:Decrypt its key") from None
        if value is None:
            raise CredentialsError(f"secret {secret_id} holds no text value")
        return value

    def json(self, secret_id: str, *keys: str, optional: tuple[str, ...] = ()) -> dict:
        """A JSON object secret whose `keys` are non-empty text and whose `optional` keys, where present, text."""
        try:
            value = json.loads(self.text(secret_id))
        except ValueError:
            raise CredentialsError(f"secret {secret_id} is not JSON") from None
        if not isinstance(value, dict):
            raise CredentialsError(f"secret {secret_id} is not a JSON object")
        missing = [key for key in keys if not value.get(key)]
        if missing:
            raise CredentialsError(f"secret {secret_id} has no {', '.join(missing)}")
        wrong = [key for key in keys + optional if value.get(key) is not None and not isinstance(value[key], str)]
        if wrong:
            raise CredentialsError(f"secret {secret_id} holds {', '.join(wrong)} as other than text")
        return value

    def refresh(self, secret_id: str, why: str) -> bool:
        """Re-read a secret now (a server refused its value); False when it was re-read a moment ago already, so
        the caller just retries with what it has. Read directly, not with the caching client's forced refresh,
        which first sleeps 2.5-5 s of jitter (meant for a fleet refreshing together) while a request waits."""
        # Held through the read: threads refused at the same moment wait for it, then retry with the new value.
        with self._lock:
            if time.monotonic() - self._refreshed.get(secret_id, -MIN_REFRESH_SECONDS) < MIN_REFRESH_SECONDS:
                return False
            self._refreshed[secret_id] = time.monotonic()
            try:
                value = self._client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
            except Exception as err:  # noqa: BLE001 the caller goes on with what it has and says why it failed
                log.warning("credentials could not be re-read", extra={"secret": secret_id, "error": _reason(err)})
                return False
            self._fresh[secret_id] = (value, time.monotonic() + self._refresh_seconds)
        log.warning("credentials re-read from Secrets Manager", extra={"secret": secret_id, "reason": why,
                                                                     "pid": os.getpid()})
        return True


_stores: dict[int, SecretStore] = {}
_stores_lock = threading.Lock()


def store(refresh_seconds: int = 3600) -> SecretStore:
    """This process's store (a forked worker gets its own: botocore clients are not shared across a fork)."""
    with _stores_lock:
        found = _stores.get(os.getpid())
        if found is None:
            _stores.clear()
            found = _stores[os.getpid()] = SecretStore(refresh_seconds)
        return found


def _reason(err: Exception) -> str:
    code = getattr(err, "response", {}).get("Error", {}).get("Code")
    return code or str(err).splitlines()[0][:200] or type(err).__name__


class DatabaseLogin:
    """The user and password the application connects to PostgreSQL with: from a secret shaped as AWS's rotation
    functions keep it (username, password; the username alternates under multi-user rotation), or fixed."""

    def __init__(self, secret_id: str | None, user: str = "", password: str = ""):
        self.secret_id, self._user, self._password = secret_id, user, password

    def current(self) -> tuple[str, str]:
        if not self.secret_id:
            return self._user, self._password
        value = store().json(self.secret_id, "username", "password")
        return value["username"], value["password"]

    def refresh(self, why: str) -> bool:
        return bool(self.secret_id) and store().refresh(self.secret_id, why)


def is_refused_login(err: Exception) -> bool:
    """PostgreSQL refused the user or password. libpq reports it only as text (no SQLSTATE reaches the client at
    connection time); the server's words are the same for a wrong password and an unknown user."""
    return "password authentication failed" in str(err)


class RedisToken:
    """The Redis AUTH token: the whole text of a secret, or fixed. A redis-py credential provider, so every new
    connection asks for the current token."""

    def __init__(self, secret_id: str | None, token: str = ""):
        self.secret_id, self._token = secret_id, token

    def get_credentials(self) -> tuple[str]:
        return (store().text(self.secret_id) if self.secret_id else self._token,)

    def refresh(self, why: str) -> bool:
        return bool(self.secret_id) and store().refresh(self.secret_id, why)


class SigningKeys:
    """Flask's SECRET_KEY and SECRET_KEY_FALLBACKS. From a secret, JSON {"current", "next", "previous"}: signing
    uses `current`; `next` and `previous` are accepted too. Each rotation moves next -> current -> previous, so every
    process accepts a key for a whole period before any process signs with it, and for a period after."""

    def __init__(self, secret_id: str | None, current: str = "", fallbacks: tuple[str, ...] = ()):
        self.secret_id, self._current, self._fallbacks = secret_id, current, tuple(fallbacks)

    def current(self) -> tuple[str, tuple[str, ...]]:
        """(signing key, accepted older and newer keys)."""
        if not self.secret_id:
            return self._current, self._fallbacks
        value = store().json(self.secret_id, "current", optional=("next", "previous"))
        return value["current"], tuple(value[k] for k in ("next", "previous") if value.get(k))
