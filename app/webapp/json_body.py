"""What a JSON request body must be before the schemas read it: sent as JSON, not empty, nested no deeper than
MAX_DEPTH, and parseable. Python's parser recurses, and a body of a thousand `[` was a RecursionError (a 500) for any
client; the depth scan stops at the first bracket past the limit and is one linear pass over brackets and strings.
Applied per view, after the token check (webapp.auth), before validation."""

from __future__ import annotations

import functools
import json
import re

from flask import request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

MAX_DEPTH = 32
# A string is a quote and what follows up to its closing quote, or to the end of the body when there is none: without
# the final `?` an unclosed string made every later quote rescan the rest of the body (quadratic: 41 s for 40 KB).
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


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
        try:  # what the parser behind the schemas lets through as a 500: an integer of more than 4300 digits
            json.loads(body)
        except ValueError as err:
            raise BadRequest(f"the body is not valid JSON: {str(err).splitlines()[0][:200]}") from None
        return view(*args, **kwargs)

    return checked
