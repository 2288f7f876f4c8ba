"""GET /health answered before Flask: the load balancer asks every few seconds per task, and the answer never
depends on anything (no dependency is called, by design), so it skips the routing, the hooks and the extensions
that make an API request cost what it costs. Same answer as the Flask route (which still answers other methods
with 405): the JSON body, the request id (taken when plain, made otherwise), the security headers, HSTS over
HTTPS. Installed inside ProxyFix, so the scheme is the client's."""

from __future__ import annotations

import os

from webapp.logs import REQUEST_ID
from webapp.security import HEADERS, HSTS

BODY = b'{"status":"ok"}\n'
PLAIN = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY))), *HEADERS.items()]


class Liveness:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != "/health" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()
        headers = [*PLAIN, ("X-Request-ID", request_id)]
        if environ.get("wsgi.url_scheme") == "https":
            headers.append(("Strict-Transport-Security", HSTS))
        start_response("200 OK", headers)
        return [BODY] if environ["REQUEST_METHOD"] == "GET" else [b""]
