"""Render nginx.conf.template for one topology: which Gunicorn instances, where the certificate and the static
files are, where logs and runtime files go. Used by the native runner, the tests and (for compose) `python -m
deploy.nginx.render --compose`, whose output is committed as deploy/nginx/compose.conf."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
COMPOSE_CONF = Path(__file__).with_name("compose.conf")

SECURITY_HEADERS = {
    "Strict-Transport-Security": '"max-age=31536000; includeSubDomains"',
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

# nginx's own error answers, as JSON in the application's shape with the request id (the application's errors pass
# through untouched: no proxy_intercept_errors). 494 is nginx's "request header too large", sent as 400.
ERRORS = {
    400: ("bad_request", "the request is malformed"),
    403: ("forbidden", "not allowed"),
    404: ("not_found", "nothing here"),
    405: ("method_not_allowed", "this method is not allowed here"),
    408: ("request_timeout", "the request was not sent in time"),
    413: ("request_entity_too_large", "the body is larger than 1 MB"),
    414: ("request_uri_too_large", "the URL is too long"),
    429: ("too_many_requests", "too many requests from this address; slow down"),
    494: ("request_header_fields_too_large", "the request headers are too large"),
    500: ("internal_error", "the server could not complete the request"),
    502: ("bad_gateway", "no application instance answered; retry shortly"),
    503: ("service_unavailable", "the service is unavailable; retry shortly"),
    504: ("gateway_timeout", "the application did not answer in time; retry shortly"),
}


def error_pages(security_headers: list[str]) -> str:
    """An internal location per status; the security headers repeated there (a location's add_header replaces the
    server's)."""
    lines = []
    for status, (name, message) in ERRORS.items():
        sent = 400 if status == 494 else status
        body = f'{{"error":"{name}","message":"{message}","request_id":"$req_id"}}'
        lines += [f"        error_page {status} /__error/{status};",
                  f"        location = /__error/{status} {{",
                  "            internal;",
                  "            default_type application/json;",
                  '            add_header X-Request-ID $req_id always;',
                  *(f"    {line}" for line in security_headers if "add_header" in line),
                  f"            return {sent} '{body}';",
                  "        }"]
    return "\n".join(lines)


PROXY_SETTINGS = """\
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_set_header Host $host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Request-ID $req_id;
proxy_connect_timeout 3s;
proxy_send_timeout 30s;
proxy_read_timeout 60s;
# Retry on another instance only when the first could not answer (refused, reset, timed out); nginx never
# retries a non-idempotent request (POST, PATCH, LOCK) once sent, unless told "non_idempotent", which this is not.
# Not on http_503: the application's own 503 (/health/detailed naming a failed dependency) is an answer, and
# counting it as a failure would take every instance out of the upstream at once.
proxy_next_upstream error timeout;
proxy_next_upstream_tries 2;
proxy_next_upstream_timeout 10s;"""


@dataclass
class NginxSite:
    upstreams: list[str]
    certificate: str
    certificate_key: str
    static_root: str
    runtime: str
    http_listen: str = "80"
    https_listen: str = "443"
    https_port: int = 443
    backup: str | None = None
    ocsp_stapling: bool = False
    resolver: str = "127.0.0.11"  # for OCSP stapling; Docker's embedded DNS in compose
    user: str | None = None  # workers drop to this user when the master runs as root
    access_log: str = "/dev/stdout"
    error_log: str = "/dev/stderr"
    mime_types: str = "/etc/nginx/mime.types"
    hidden: list[str] = field(default_factory=lambda: list(SECURITY_HEADERS))
    server_name: str = "localhost"  # redirects go here, never to the client's Host header
    rate_per_second: int = 20  # limit_req per client address, with a burst of twice that
    connections_per_address: int = 50

    def render(self) -> str:
        # An instance is taken out after 5 failed attempts within 5 s, for 5 s: a dead instance goes quickly under
        # load, while the couple of errors of one crashed worker (its in-flight requests) do not take out an
        # instance that is serving; with the other instance dead, that would leave no upstream at all.
        servers = [f"        server {u} max_fails=5 fail_timeout=5s;" for u in self.upstreams]
        if self.backup:
            servers.append(f"        server {self.backup} backup;")
        headers = [f"        proxy_hide_header {name};" for name in self.hidden]  # the app sets them too
        headers += [f"        add_header {name} {value} always;" for name, value in SECURITY_HEADERS.items()]
        ocsp = (f"        ssl_stapling on;\n        ssl_stapling_verify on;\n"
                f"        resolver {self.resolver} valid=300s ipv6=off;\n        resolver_timeout 5s;"
                if self.ocsp_stapling else "        # OCSP stapling: on for a certificate from a public CA.")
        values = {
            "USER_DIRECTIVE": f"user {self.user};" if self.user else "# (not root: no user directive)",
            "RUNTIME": self.runtime, "ERROR_LOG": self.error_log, "ACCESS_LOG": self.access_log,
            "MIME_TYPES": self.mime_types, "UPSTREAM_SERVERS": "\n".join(servers),
            "HTTP_LISTEN": self.http_listen, "HTTPS_LISTEN": self.https_listen,
            "HTTPS_PORT_SUFFIX": "" if self.https_port == 443 else f":{self.https_port}",
            "CERTIFICATE": self.certificate, "CERTIFICATE_KEY": self.certificate_key,
            "STATIC_ROOT": self.static_root.rstrip("/"), "OCSP_STAPLING": ocsp,
            "SECURITY_HEADERS": "\n".join(headers), "SERVER_NAME": self.server_name,
            "RATE_PER_SECOND": str(self.rate_per_second), "RATE_BURST": str(2 * self.rate_per_second),
            "CONNECTIONS_PER_ADDRESS": str(self.connections_per_address), "ERROR_PAGES": error_pages(headers),
            "PROXY_SETTINGS": "\n".join(f"            {line}" for line in PROXY_SETTINGS.splitlines()),
        }
        text = TEMPLATE.read_text()
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        if "@@" in text:
            raise ValueError("unrendered placeholder in nginx.conf.template")
        return text


def compose_site() -> NginxSite:
    """The docker compose topology: two web containers, certificates from a volume, OCSP stapling on."""
    return NginxSite(upstreams=["web1:8000", "web2:8000"], certificate="/etc/nginx/certs/fullchain.pem",
                     certificate_key="/etc/nginx/certs/privkey.pem", static_root="/srv/static",
                     runtime="/tmp", ocsp_stapling=True, user="nginx")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compose", action="store_true", help=f"write {COMPOSE_CONF.name}")
    parser.add_argument("--server-name", default="localhost",
                        help="the site's DNS name: redirects go there (default localhost)")
    args = parser.parse_args(argv)
    if args.compose:
        COMPOSE_CONF.write_text(dataclasses.replace(compose_site(), server_name=args.server_name).render())
        return 0
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
