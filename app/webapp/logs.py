"""Structured JSON logs to stdout, each line carrying the request id."""

from __future__ import annotations

import logging
import os
import re
import sys

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_request_context() else None
        return True


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of the write (a container's stdout, a test's capture)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PlainText(logging.Filter):
    """No terminal colour codes inside a JSON line (Werkzeug's development server colours its request lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "\x1b" in message:
            record.msg, record.args = ANSI.sub("", message), ()
        return True


def json_formatter() -> JsonFormatter:
    """One JSON object per line: time (ISO 8601 with its UTC offset), level, logger, message, request id, and any
    `extra` fields."""
    return JsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})


def configure_logging(level: str) -> None:
    handler = StdoutHandler()
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(PlainText())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # AWS SDK chatter (an INFO line per client created) is not the application's news.
    for noisy in ("botocore", "boto3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def init_request_ids(app: Flask) -> None:
    """Take the request id from X-Request-ID (set by nginx or the ALB's caller) or make one; return it."""
    access = logging.getLogger("webapp.request")

    @app.before_request
    def assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()  # uuid4().hex, cheaper

    @app.after_request
    def log_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        # Gunicorn's JSON access line already records every request with this id (from the response header);
        # the app's own line is for debugging, so it costs nothing at INFO.
        if access.isEnabledFor(logging.DEBUG) and request.path != "/health":
            access.debug("request", extra={"method": request.method, "path": request.path,
                                           "status": response.status_code, "remote_addr": request.remote_addr})
        return response
