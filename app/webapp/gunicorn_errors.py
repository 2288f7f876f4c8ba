"""Gunicorn's own error answers (a malformed request line, a header too large, an Expect it does not meet: what it
refuses before the application sees the request) as JSON in the application's error shape, with a request id,
instead of an HTML page. Installed in every worker by gunicorn.conf.py (post_worker_init) by replacing
gunicorn.util.write_error, which its workers call for exactly these answers; the bytes are checked by a test
against the pinned Gunicorn."""

from __future__ import annotations

import json
import os

from gunicorn import util

from webapp.errors import error_name


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    request_id = os.urandom(16).hex()
    body = json.dumps({"error": error_name(status_int), "message": mesg or reason, "request_id": request_id},
                      ensure_ascii=True).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


def install() -> None:
    util.write_error = write_json_error
