"""What a stranger can do to the edge, through nginx and straight to Gunicorn: every error is JSON with a request
id, redirects never follow the client's Host, bodies the application does not read take no instance out, Gunicorn's
own refusals and a broken chunked body are 4xx JSON, and a seeded fuzz of methods, paths, headers and bodies finds
no 5xx."""

from __future__ import annotations

import json
import re
import socket
import ssl

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import nginx_log
from tests.strategies import hostile_text

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def raw_request(host: str, port: int, data: bytes, tls_ca: str | None = None) -> bytes:
    """Bytes on the wire, for what no HTTP client sends; the whole answer until the server closes or 5 s pass."""
    connection = socket.create_connection((host, port), timeout=5)
    if tls_ca:
        context = ssl.create_default_context(cafile=tls_ca)
        connection = context.wrap_socket(connection, server_hostname="localhost")
    with connection:
        connection.sendall(data)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), answer[:500]
    return status, json.loads(body)


def assert_json_error(response: requests.Response, status: int | None = None) -> None:
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]
    body = response.json()
    assert set(body) >= {"error", "message", "request_id"}
    assert REQUEST_ID.fullmatch(body["request_id"])


@pytest.mark.parametrize("path,status", [("/nope", 404), ("/static/nothing.css", 404),
                                         ("/api/notes?" + "x" * 9000, 414)])
def test_nginx_and_app_errors_through_nginx_are_json(topology, https, path, status):
    assert_json_error(https.get(f"{topology.url}{path}", timeout=5), status)


def test_an_oversized_body_is_413_json_from_nginx(topology, https):
    response = https.post(f"{topology.url}/api/notes", data=b"x" * (2 * 1024 * 1024),
                          headers={"Content-Type": "application/json"}, timeout=10)
    assert_json_error(response, 413)


def test_headers_too_large_are_400_json_from_nginx(topology, https):
    assert_json_error(https.get(f"{topology.url}/health", headers={"X-Big": "y" * 20000}, timeout=5), 400)


def test_redirects_never_use_the_clients_host(topology):
    response = requests.get(f"{topology.http_url}/api/notes", headers={"Host": "evil.example"},
                            allow_redirects=False, timeout=5)
    assert response.status_code == 301 and response.headers["Location"].startswith("https://localhost:")
    # The application issues no slash-merging redirect (Werkzeug would build it from the Host header).
    direct = f"http://127.0.0.1:{topology.gunicorns[0].port}"
    merged = requests.get(f"{direct}/api//notes", headers={"Host": "evil.example"}, allow_redirects=False, timeout=5)
    assert merged.status_code == 404 and "Location" not in merged.headers


def test_a_request_id_that_is_not_plain_is_replaced_not_echoed(topology, https):
    response = https.get(f"{topology.url}/nope", headers={"X-Request-ID": 'a"b<c>'}, timeout=5)
    assert_json_error(response, 404)
    assert response.headers["X-Request-ID"] != 'a"b<c>' and REQUEST_ID.fullmatch(response.headers["X-Request-ID"])


def test_gunicorns_own_refusals_and_broken_chunks_are_json_4xx(topology):
    port = topology.gunicorns[0].port
    status, body = status_and_json(raw_request("127.0.0.1", port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"))
    assert status == 414 and REQUEST_ID.fullmatch(body["request_id"])
    status, body = status_and_json(raw_request("127.0.0.1", port, b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 400 and body["error"] == "bad_request"
    chunked = (b"POST /api/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer " + topology.token.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"zz\r\n{}\r\n0\r\n\r\n")
    status, body = status_and_json(raw_request("127.0.0.1", port, chunked))
    assert status == 400 and "request_id" in body


def test_unread_bodies_take_no_instance_out_of_nginx(topology, https):
    """Posting large bodies to a path the application does not read once made nginx count broken pipes as
    instance failures (max_fails): every instance out, 502 for everyone."""
    body = b"x" * (1024 * 1024 - 100)  # just under both limits; 60 of these gave 502s before the fix
    for _ in range(150):
        assert https.post(f"{topology.url}/nope", data=body, timeout=10).status_code == 404
    assert [https.get(f"{topology.url}/health", timeout=5).status_code for _ in range(20)] == [200] * 20
    assert "upstream server temporarily disabled" not in (topology.directory / "nginx" / "error.log").read_text()
    assert '"status":502' not in nginx_log(topology)


METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"])
PATHS = st.one_of(st.sampled_from(["/api/notes", "/api/notes/1", "/api/notes/2147483648", "/health",
                                   "/health/detailed", "/api/openapi.json", "/static/css/site.css"]),
                  st.builds(lambda base, tail: base + tail, st.sampled_from(["/api/notes/", "/api/notes?page=", "/",
                                                                            "/api/notes?per_page="]),
                            hostile_text(12)))
BODIES = st.one_of(st.none(), st.binary(max_size=200), st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), hostile_text(20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["title", "body", "x"]),
                                                                        inner, max_size=3)),
    max_leaves=6).map(lambda v: json.dumps(v).encode()))
HEADERS = st.dictionaries(st.sampled_from(["X-Request-ID", "Content-Type", "Accept", "Authorization", "X-Forwarded-For",
                                           "Host", "Idempotency-Key"]),
                          hostile_text(30).map(lambda t: t.encode("utf-8", "replace").decode("latin-1")), max_size=3)


@pytest.mark.parametrize("through", ["nginx", "gunicorn"])
def test_fuzz_no_5xx_every_error_json_and_nothing_echoed(topology, https, through):
    base = topology.url if through == "nginx" else f"http://127.0.0.1:{topology.gunicorns[0].port}"
    session = https if through == "nginx" else requests.Session()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(method=METHODS, path=PATHS, headers=HEADERS, body=BODIES, with_token=st.booleans())
    def one(method, path, headers, body, with_token):
        headers = {k: v for k, v in headers.items() if "\r" not in v and "\n" not in v and "\x00" not in v}
        if with_token:
            headers["Authorization"] = f"Bearer {topology.token}"
        try:
            response = session.request(method, f"{base}{path}", headers=headers, data=body, timeout=10,
                                       allow_redirects=False)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, UnicodeError, ValueError):
            return  # the client library refused to send it
        assert response.status_code < 500, (method, path, headers, body, response.status_code, response.text[:300])
        if response.status_code >= 400 and method != "HEAD":
            assert_json_error(response)
        sent = set(headers.values()) - {"", f"Bearer {topology.token}"}
        for name, value in response.headers.items():
            assert value not in sent or REQUEST_ID.fullmatch(value), (name, value)

    one()
