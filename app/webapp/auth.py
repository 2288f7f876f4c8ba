"""Who may call what: writes need `Authorization: Bearer <token>` (webapp.tokens); reads are public unless
APP_PUBLIC_READS is off; /health/detailed always needs a token. 401 with WWW-Authenticate for a missing, malformed
or unknown token, 403 for a revoked one, in the API's error shape."""

from __future__ import annotations

import functools

from apiflask import HTTPTokenAuth, abort
from flask import current_app, g, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from webapp import tokens
from webapp.database import db, read_with_fallback

auth = HTTPTokenAuth(scheme="Bearer", description="a token from `flask tokens create NAME`")


@auth.verify_token
def verify(token: str):
    """The token's name, or None. A write's token is read on the primary (g.db_primary), so a revocation a moment
    ago counts; a read's on a replica, falling back to the primary."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        g.db_primary = True
    found = read_with_fallback(lambda: tokens.find(token))
    db.session.close()  # the lookup ran in autocommit: the request's own work starts a transaction of its own
    if found is None:
        return None
    if found.revoked_at is not None:
        abort(403, f"the token {found.name} was revoked; ask for a new one")
    tokens.touch(found)
    g.token_name = found.name
    return found.name


@auth.error_processor
def auth_error(error):
    if error.status_code == 401:
        error.message = "send Authorization: Bearer <token> with a valid API token (flask tokens create NAME)"
    return current_app.error_callback(error)


def describe_reads(app, spec: dict) -> dict:
    """With APP_PUBLIC_READS off the description says reads need the token too."""
    if not app.config["APP_PUBLIC_READS"]:
        for path, operations in spec["paths"].items():
            if path.startswith("/api/notes") and "get" in operations:
                operations["get"]["security"] = [{"BearerAuth": []}]
                operations["get"]["responses"]["401"] = {
                    "description": "no valid token", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}}}
    return spec


def reads(view):
    """A read: open to anyone when APP_PUBLIC_READS is on (a token sent along is not looked up: a public read costs
    no database round trip for it), else a token."""
    protected = auth.login_required(view)

    @functools.wraps(view)
    def run(*args, **kwargs):
        if current_app.config["APP_PUBLIC_READS"]:
            return view(*args, **kwargs)
        return protected(*args, **kwargs)

    return run


def token_or_unavailable(unavailable):
    """A token, checked against a database that may be down: then `unavailable()` answers instead (the detailed
    health check reports the database failing without its details, which is no more than any write would say)."""
    def decorate(view):
        protected = auth.login_required(view)

        @functools.wraps(view)
        def run(*args, **kwargs):
            try:
                return protected(*args, **kwargs)
            except (DBAPIError, PoolTimeout):
                return unavailable()

        return run

    return decorate
