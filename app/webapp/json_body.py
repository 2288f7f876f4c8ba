"""What a JSON request body must be before anything parses it: sent as JSON, not empty, and nested no deeper than
MAX_DEPTH. Python's parser recurses, and a body of a thousand `[` was a RecursionError (a 500) for any client; the
depth scan stops at the first bracket past the limit, so a hostile body costs a few dozen steps, an ordinary one a
pass over its brackets and strings. Applied per view, after the token check (webapp.auth), before validation."""

from __future__ import annotations

import functools
import re

from flask import request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

MAX_DEPTH = 32
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    depth = 0
    for token in _TOKENS.finditer(body):
        mark = token.group()[:1]
        if mark in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif mark in (b"]", b"}"):
            depth -= 1
    return False


def json_body(view):
    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not request.is_json:
            raise UnsupportedMediaType("send the body as JSON, with Content-Type: application/json")
        body = request.get_data(cache=True)  # bounded by MAX_CONTENT_LENGTH: 413 past it
        if not body.strip():
            raise BadRequest("the request needs a JSON body")
        if too_deep(body):
            raise BadRequest(f"the JSON body is nested deeper than {MAX_DEPTH} levels")
        return view(*args, **kwargs)

    return checked
