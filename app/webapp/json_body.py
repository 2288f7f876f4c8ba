"""JSON request bodies too deeply nested are refused before anything parses them: Python's parser recurses, and a
body of a thousand `[` was a RecursionError (a 500) for any client. The scan stops at the first bracket past the
limit, so a hostile body costs a few dozen steps; an ordinary one, one pass over its brackets and strings."""

from __future__ import annotations

import re

from flask import Flask, request
from werkzeug.exceptions import BadRequest

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


def init_json_body_limits(app: Flask) -> None:
    @app.before_request
    def refuse_deep_json():
        if request.is_json and request.content_length != 0 and too_deep(request.get_data(cache=True)):
            raise BadRequest(f"the JSON body is nested deeper than {MAX_DEPTH} levels")
