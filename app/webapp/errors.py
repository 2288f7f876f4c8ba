"""Every error is a JSON answer with the request id: 4xx naming the problem, 503 with Retry-After when the database
cannot be reached, 500 without internals. One shape for all of them (ERROR_SCHEMA, also in the OpenAPI
description): {"error": a name, "message": a sentence, "request_id": ..., "fields": {field: problem} on 422}."""

from __future__ import annotations

import logging

from apiflask import APIFlask, HTTPError
from flask import g, jsonify
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from webapp.database import unreachable

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message", "request_id"],
    "properties": {
        "error": {"type": "string", "description": "a name for the kind of error, e.g. not_found"},
        "message": {"type": "string"},
        "request_id": {"type": "string", "description": "also in the X-Request-ID header; quote it in reports"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "on 422: each field in error and what is wrong with it"},
    },
}


def error_name(status: int) -> str:
    if status == 422:
        return "validation_failed"
    if status == 500:
        return "internal_error"
    return HTTP_STATUS_CODES.get(status, "error").lower().replace(" ", "_").replace("-", "_")


def error_body(status: int, message: str, fields: dict | None = None) -> dict:
    body = {"error": error_name(status), "message": message, "request_id": g.get("request_id", "")}
    if fields:
        body["fields"] = fields
    return body


def flat_fields(detail) -> dict[str, str]:
    """APIFlask's {"json": {"title": ["Too long."]}, "query": {...}} as {"title": "Too long."}."""
    fields = {}
    for messages in (detail or {}).values():
        if isinstance(messages, dict):
            for name, problems in messages.items():
                fields[str(name)] = "; ".join(_texts(problems))
    return fields


def _texts(problems) -> list[str]:
    if isinstance(problems, dict):  # nested: {"0": [...]} or {"value": [...]}
        return [text for inner in problems.values() for text in _texts(inner)]
    if isinstance(problems, list):
        return [text for inner in problems for text in _texts(inner)]
    return [str(problems)]


def _malformed_body(err: Exception) -> bool:
    try:
        from gunicorn.http.errors import NoMoreData, ParseException
    except ImportError:  # not under Gunicorn
        return False
    return isinstance(err, (ParseException, NoMoreData))


def init_errors(app: APIFlask) -> None:
    app.config["HTTP_ERROR_SCHEMA"] = ERROR_SCHEMA
    app.config["VALIDATION_ERROR_SCHEMA"] = ERROR_SCHEMA

    @app.error_processor
    def json_error(err: HTTPError):
        message = err.message
        if err.status_code == 422 and message in ("Validation error", "Unprocessable Entity"):  # APIFlask's own
            message = "the request does not match the API's description"
        return error_body(err.status_code, message, flat_fields(err.detail)), err.status_code, err.headers

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        """Flask's and Werkzeug's own errors (404, 405, 413, a body webargs could not parse), with their reason
        (APIFlask's handler would keep only the status name)."""
        headers = {k: v for k, v in err.get_headers() if k.lower() != "content-type"}
        messages = (getattr(err, "data", None) or {}).get("messages")
        message = "; ".join(_texts(messages)) if messages else (err.description or err.name)
        return json_error(HTTPError(err.code or 500, message=message, headers=headers))

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        if _malformed_body(err):  # Gunicorn found the body broken while the application read it
            return jsonify(error_body(400, "the request body is malformed (its chunked encoding, or it ended "
                                           "early)")), 400
        if isinstance(err, (DBAPIError, PoolTimeout)) and unreachable(err):
            log.warning("database unreachable", extra={"error": str(getattr(err, "orig", err))})
            response = jsonify(error_body(503, "The database is unavailable; retry after a few seconds."))
            return response, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
        log.exception("unhandled error")
        return jsonify(error_body(500, "The server could not complete the request.")), 500
