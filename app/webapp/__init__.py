"""The application factory: create_app() builds a configured Flask app (one per process)."""

from __future__ import annotations

import logging
import os

import click
from apiflask import APIFlask
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp import config as config_module
from webapp.auth import describe_reads
from webapp.credentials import DatabaseLogin
from webapp.database import db, log_in_with
from webapp.errors import init_errors
from webapp.extensions import csrf, migrate
from webapp.limits import init_limits
from webapp.liveness import Liveness
from webapp.logs import configure_logging, init_request_ids
from webapp.security import init_security_headers
from webapp.sessions import CookieSessions
from webapp.unread_body import init_unread_body_draining

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "migrations")


def create_app(env_name: str | None = None, overrides: dict | None = None) -> APIFlask:
    try:
        settings = config_module.load(env_name)
    except config_module.ConfigError as err:
        if click.get_current_context(silent=True) is None:
            raise
        # A `flask ...` command: the entrypoint's one JSON line and exit code 2, not a traceback.
        from webapp.preflight import logger

        logger().error(f"error: {err}")
        raise SystemExit(2) from None
    configure_logging(settings.LOG_LEVEL)
    # APIFlask is Flask with request validation and the OpenAPI description (docs/ARCHITECTURE.md says why this
    # library); no docs page (it would load scripts from a CDN), the description at /api/openapi.json.
    app = APIFlask(__name__, title="Notes API", version=settings.APP_VERSION, spec_path="/api/openapi.json",
                   docs_path=None)
    app.session_interface = CookieSessions()
    # No redirect that merges slashes (//api//notes): Werkzeug builds its Location from the client's Host header.
    app.url_map.merge_slashes = False
    app.config.from_object(settings)
    app.config.update(overrides or {})

    app.wsgi_app = Liveness(app.wsgi_app)  # GET /health without Flask's machinery (webapp/liveness.py)
    if app.config["PROXY_COUNT"]:
        hops = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    if app.config["SENTRY_DSN"]:
        _init_sentry(app)

    init_request_ids(app)  # first, so every later hook and error answer knows the request id
    db.init_app(app)
    if app.config["DATABASE_SECRET_ARN"]:
        with app.app_context():
            for engine in db.engines.values():  # the primary and every replica: one login
                log_in_with(engine, DatabaseLogin(app.config["DATABASE_SECRET_ARN"]))
    migrate.init_app(app, db, directory=MIGRATIONS)
    csrf.init_app(app)
    init_security_headers(app)
    init_errors(app)
    init_limits(app)
    init_unread_body_draining(app)

    from webapp import idempotency, models, tokens  # noqa: F401 the models register with the metadata
    from webapp.api.notes import bp as notes
    from webapp.api.schemas import describe
    from webapp.health import bp as health

    # The JSON API is not cookie-authenticated (no session, no login), so CSRF tokens protect nothing there;
    # any form or cookie-authenticated view added later is protected by default.
    csrf.exempt(notes)
    from webapp.backups.cli import backup_cli
    from webapp.database_cli import register as register_database_commands
    from webapp.tokens_cli import tokens_cli

    app.register_blueprint(health)
    app.register_blueprint(notes)
    # APIFlask takes one spec processor: the description's additions, in one place.
    app.spec_processor(lambda spec: describe_reads(app, describe(spec)))
    app.cli.add_command(backup_cli)
    app.cli.add_command(tokens_cli)
    register_database_commands()
    logging.getLogger(__name__).info("app ready", extra={"env": settings.ENV_NAME,
                                                         "replicas": len(app.config["DATABASE_REPLICAS"]),
                                                         "redis": bool(app.config["REDIS_URL"])})
    return app


def _init_sentry(app: APIFlask) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(dsn=app.config["SENTRY_DSN"], integrations=[FlaskIntegration()],
                    environment=app.config["ENV_NAME"],
                    release=app.config["APP_VERSION"], traces_sample_rate=0.0, send_default_pii=False)
