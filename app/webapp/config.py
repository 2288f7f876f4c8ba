"""Configuration classes, one per environment, chosen by APP_ENV; values come from the environment only.

The container contract (docs/ARCHITECTURE.md) is the list of variables read here and in gunicorn.conf.py.
"""

from __future__ import annotations

import os
from urllib.parse import quote

DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(Exception):
    """The environment cannot run this configuration; the message says what to change."""


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not true or false")


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def database_url() -> str | None:
    """DATABASE_URL, or a PostgreSQL URL built from DATABASE_HOST/PORT/NAME/USER/PASSWORD and the TLS settings
    (DATABASE_SSLMODE, DATABASE_SSLROOTCERT); None when neither is set. With DATABASE_SECRET_ARN the URL carries
    no credentials: each new connection takes them from the secret (webapp.credentials)."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    host = os.environ.get("DATABASE_HOST")
    if not host:
        return None
    credentials = ""
    if not os.environ.get("DATABASE_SECRET_ARN"):
        user = quote(os.environ.get("DATABASE_USER", "postgres"), safe="")
        password = quote(os.environ.get("DATABASE_PASSWORD", ""), safe="")
        credentials = f"{user}:{password}@" if password else f"{user}@"
    port = os.environ.get("DATABASE_PORT", "5432")
    name = os.environ.get("DATABASE_NAME", "app")
    query = f"sslmode={os.environ.get('DATABASE_SSLMODE') or 'prefer'}"
    if os.environ.get("DATABASE_SSLROOTCERT"):
        query += f"&sslrootcert={quote(os.environ['DATABASE_SSLROOTCERT'], safe='/')}"
    return f"postgresql+psycopg://{credentials}{host}:{port}/{name}?{query}"


def replica_urls(primary_url: str) -> list[str]:
    """One URL per DATABASE_REPLICA_HOSTS entry (host or host:port): the primary's URL (from DATABASE_URL or the
    parts) with the host and port replaced, so replicas use the same user, password, database and options."""
    from sqlalchemy.engine import make_url

    hosts = [h.strip() for h in os.environ.get("DATABASE_REPLICA_HOSTS", "").split(",") if h.strip()]
    if not hosts:
        return []
    primary = make_url(primary_url)
    urls = []
    for host in hosts:
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        urls.append(primary.set(host=name, port=int(port) if port else primary.port)
                    .render_as_string(hide_password=False))
    return urls


class Config:
    """What every environment shares."""

    ENV_NAME = "base"
    DEBUG = False
    TESTING = False

    def __init__(self):
        self.SECRET_KEY = os.environ.get("SECRET_KEY", "")
        self.SQLALCHEMY_DATABASE_URI = database_url() or self.default_database()
        # No ping before each checkout (a round trip per request): connections are replaced after DB_POOL_RECYCLE
        # seconds, below any idle timeout between the app and the database, and one the server closed is caught
        # when used (database.read_with_fallback, write_with_retry).
        engine = {"pool_pre_ping": False, "pool_recycle": env_int("DB_POOL_RECYCLE", 300)}
        postgres = {"pool_size": env_int("DB_POOL_SIZE", 5), "max_overflow": env_int("DB_MAX_OVERFLOW", 2),
                    "pool_timeout": env_int("DB_POOL_TIMEOUT", 5),
                    "connect_args": {"connect_timeout": env_int("DB_CONNECT_TIMEOUT", 3), "application_name": "webapp"}}
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            engine.update(postgres)
        self.SQLALCHEMY_ENGINE_OPTIONS = engine
        # Flask-SQLAlchemy gives a bind given as a bare URL none of SQLALCHEMY_ENGINE_OPTIONS: each replica carries
        # the same pool settings explicitly.
        self.SQLALCHEMY_BINDS = {f"replica_{i}": {"url": url, "pool_pre_ping": False,
                                                  "pool_recycle": engine["pool_recycle"], **postgres}
                                 for i, url in enumerate(replica_urls(self.SQLALCHEMY_DATABASE_URI)
                                                         if self.SQLALCHEMY_DATABASE_URI else [])}
        self.DATABASE_REPLICAS = list(self.SQLALCHEMY_BINDS)
        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        self.REDIS_URL = os.environ.get("REDIS_URL") or self.redis_url_from_parts()
        self.REDIS_CA_CERTS = os.environ.get("REDIS_CA_CERTS", "")  # empty: the system's CAs (ElastiCache's chain)
        # Secrets Manager, when these name secrets (webapp.credentials); the plain variables otherwise.
        self.DATABASE_SECRET_ARN = os.environ.get("DATABASE_SECRET_ARN", "")
        self.REDIS_AUTH_SECRET_ARN = os.environ.get("REDIS_AUTH_SECRET_ARN", "")
        self.REDIS_AUTH_TOKEN = os.environ.get("REDIS_AUTH_TOKEN", "")
        self.SECRET_KEY_SECRET_ARN = os.environ.get("SECRET_KEY_SECRET_ARN", "")
        self.SECRET_KEY_FALLBACKS = [k for k in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if k]
        self.CACHE_TTL_SECONDS = env_int("CACHE_TTL_SECONDS", 60)
        self.REDIS_TIMEOUT_SECONDS = env_float("REDIS_TIMEOUT_SECONDS", 0.5)
        self.PROXY_COUNT = env_int("PROXY_COUNT", 0)
        self.LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
        self.SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
        self.APP_VERSION = os.environ.get("APP_VERSION", "dev")
        self.MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 1024 * 1024)
        self.APP_PUBLIC_READS = env_bool("APP_PUBLIC_READS", True)  # writes always need a token (webapp.auth)
        # webapp.limits; the limits in the `limits` package's notation ("600 per minute", "10/second;500/hour").
        self.RATE_LIMITS_ENABLED = env_bool("RATE_LIMITS_ENABLED", True)
        self.RATE_LIMIT_PER_ADDRESS = os.environ.get("RATE_LIMIT_PER_ADDRESS", "600 per minute")
        self.RATE_LIMIT_WRITES = os.environ.get("RATE_LIMIT_WRITES", "120 per minute")
        self.HEALTH_CACHE_SECONDS = env_float("HEALTH_CACHE_SECONDS", 5.0)
        self.HEALTH_CHECK_TIMEOUT_SECONDS = env_float("HEALTH_CHECK_TIMEOUT_SECONDS", 2.0)
        self.HEALTH_DISK_PATH = os.environ.get("HEALTH_DISK_PATH", "/")
        self.HEALTH_DISK_MAX_PERCENT = env_float("HEALTH_DISK_MAX_PERCENT", 90.0)
        self.HEALTH_MEMORY_MAX_PERCENT = env_float("HEALTH_MEMORY_MAX_PERCENT", 90.0)
        self.REPLICA_RETRY_SECONDS = env_float("REPLICA_RETRY_SECONDS", 10.0)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.JSON_SORT_KEYS = False

    def default_database(self) -> str:
        return ""  # reported by validate(), together with anything else that is wrong

    @staticmethod
    def redis_url_from_parts() -> str:
        """A URL from REDIS_HOST/PORT/TLS; the AUTH token is not in it (webapp.credentials gives it to each new
        connection, so a rotated token is taken at reconnect)."""
        host = os.environ.get("REDIS_HOST")
        if not host:
            return ""
        scheme = "rediss" if env_bool("REDIS_TLS", False) else "redis"
        return f"{scheme}://{host}:{os.environ.get('REDIS_PORT', '6379')}/0"

    def validate(self) -> None:
        """Refuse to run a configuration that is unsafe for this environment (every process)."""
        problems = self.tls_problems() + self.limit_problems()
        if problems:
            raise ConfigError("; ".join(problems))

    def validate_serving(self) -> None:
        """What a process serving HTTP needs beyond that (Gunicorn; the jobs sign nothing and get no key)."""

    def limit_problems(self) -> list[str]:
        from limits import parse_many

        problems = []
        for name in ("RATE_LIMIT_PER_ADDRESS", "RATE_LIMIT_WRITES"):
            try:
                parse_many(getattr(self, name))
            except ValueError:
                problems.append(f"{name}={getattr(self, name)!r} is not a rate limit (write e.g. '600 per minute' "
                                "or '10/second;500/hour')")
        return problems

    @staticmethod
    def tls_problems() -> list[str]:
        problems = []
        sslmode = os.environ.get("DATABASE_SSLMODE", "")
        if sslmode and sslmode not in SSLMODES:
            problems.append(f"DATABASE_SSLMODE={sslmode!r} is not one of {', '.join(SSLMODES)}")
        for name in ("DATABASE_SSLROOTCERT", "REDIS_CA_CERTS"):
            path = os.environ.get(name, "")
            if path and not os.path.isfile(path):
                problems.append(f"{name}={path} is not a readable file (the CA certificates to verify the server "
                                "with)")
        return problems


class DevelopmentConfig(Config):
    """The default: runs with nothing else installed (SQLite file, no Redis)."""

    ENV_NAME = "development"
    DEBUG = True

    def __init__(self):
        super().__init__()
        self.SECRET_KEY = self.SECRET_KEY or DEV_SECRET_KEY

    def default_database(self) -> str:
        return "sqlite:///" + os.path.abspath(os.environ.get("SQLITE_PATH", "development.sqlite3"))


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True

    def __init__(self):
        super().__init__()
        self.SECRET_KEY = self.SECRET_KEY or "testing-secret-key-" + "x" * 32
        self.HEALTH_CACHE_SECONDS = env_float("HEALTH_CACHE_SECONDS", 0.0)

    def default_database(self) -> str:
        return "sqlite://"


class ProductionConfig(Config):
    """Deployed: secure cookies, real secrets, PostgreSQL."""

    ENV_NAME = "production"

    def __init__(self):
        super().__init__()
        self.DEBUG = env_bool("FLASK_DEBUG", False)
        self.SESSION_COOKIE_SECURE = True
        self.PREFERRED_URL_SCHEME = "https"

    def validate(self) -> None:
        problems = []
        if self.DEBUG:
            problems.append("DEBUG is on (unset FLASK_DEBUG): the debugger runs code for whoever can reach it")
        if not self.SQLALCHEMY_DATABASE_URI:
            problems.append("no database: set DATABASE_URL, or DATABASE_HOST (+ DATABASE_PORT, DATABASE_NAME, "
                            "DATABASE_USER, DATABASE_PASSWORD)")
        elif self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            problems.append("the database is SQLite; set DATABASE_URL or DATABASE_HOST to PostgreSQL")
        self._refuse(problems + self.tls_problems() + self.limit_problems())

    def validate_serving(self) -> None:
        """A strong signing key: SECRET_KEY, or the current key of SECRET_KEY_SECRET_ARN."""
        from webapp.credentials import CredentialsError, SigningKeys

        try:
            key = SigningKeys(self.SECRET_KEY_SECRET_ARN, self.SECRET_KEY).current()[0]
        except CredentialsError as err:
            self._refuse([str(err)])
        origin = "the current key of SECRET_KEY_SECRET_ARN" if self.SECRET_KEY_SECRET_ARN else "SECRET_KEY"
        if not key:
            self._refuse(["SECRET_KEY is not set (nor SECRET_KEY_SECRET_ARN)"])
        elif key == DEV_SECRET_KEY:
            self._refuse([f"{origin} is the development default"])
        elif len(key) < MIN_SECRET_KEY_LENGTH:
            self._refuse([f"{origin} has {len(key)} characters; use at least {MIN_SECRET_KEY_LENGTH} random ones"])

    def _refuse(self, problems: list[str]) -> None:
        if problems:
            raise ConfigError(f"refusing to start with APP_ENV={self.ENV_NAME}: " + "; ".join(problems))


class StagingConfig(ProductionConfig):
    """Production's rules, its own name in logs and error tracking."""

    ENV_NAME = "staging"


CONFIGS = {c.ENV_NAME: c for c in (DevelopmentConfig, TestingConfig, StagingConfig, ProductionConfig)}


def load(env_name: str | None = None) -> Config:
    name = (env_name or os.environ.get("APP_ENV") or "development").lower()
    if name not in CONFIGS:
        raise ConfigError(f"APP_ENV={name!r} is not one of {', '.join(CONFIGS)}")
    config = CONFIGS[name]()
    config.validate()
    return config
