"""Every error is a JSON answer: 4xx naming the problem, 500 without internals."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ValidationError(Exception):
    """Bad input: which fields and why."""

    def __init__(self, fields: dict[str, str], status: int = 422):
        super().__init__(", ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields
        self.status = status


def init_errors(app: Flask) -> None:
    @app.errorhandler(ValidationError)
    def validation_error(err: ValidationError):
        return jsonify(error="validation_failed", fields=err.fields, request_id=g.get("request_id")), err.status

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        name = (err.name or "error").lower().replace(" ", "_")
        return jsonify(error=name, message=err.description, request_id=g.get("request_id")), err.code

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        log.exception("unhandled error")
        return jsonify(error="internal_error", message="The server could not complete the request.",
                       request_id=g.get("request_id")), 500
