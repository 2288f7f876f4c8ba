"""Security headers set by the application itself, for the self-hosted path and defence in depth."""

from flask import Flask, request

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"


def init_security_headers(app: Flask) -> None:
    @app.after_request
    def add_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:  # behind a proxy, ProxyFix makes this reflect X-Forwarded-Proto
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response
