"""Headers and body leave Gunicorn in one write (webapp/single_write.py): same bytes as Gunicorn's own response,
fewer writes, and the real Gunicorn config installs it in every worker."""

import http.client
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import wsgi
from webapp.single_write import SingleWriteResponse

from deploy.local.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


class RecordingSocket:
    def __init__(self):
        self.writes = []

    def sendall(self, data):
        self.writes.append(bytes(data))


def respond(response_class, method, status, headers, body, version=(1, 1)):
    sock = RecordingSocket()
    request = SimpleNamespace(method=method, version=version, should_close=lambda: False)
    response = response_class(request, sock, Config())
    response.start_response(status, headers)
    for chunk in body:
        response.write(chunk)
    response.close()
    return sock.writes


CASES = {
    "json with Content-Length": ("GET", "200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")],
                                 [b'{"ok":true}']),
    "streamed, chunked": ("GET", "200 OK", [("Content-Type", "text/plain")], [b"first ", b"", b"second"]),
    "HEAD": ("HEAD", "200 OK", [("Content-Length", "11")], [b'{"ok":true}']),
    "304": ("GET", "304 Not Modified", [("ETag", '"x"')], [b""]),
    "empty body": ("GET", "201 Created", [("Content-Length", "0")], []),
    "chunked, no body": ("GET", "200 OK", [], []),
}


@pytest.mark.parametrize("case", CASES)
def test_same_bytes_as_gunicorn_with_headers_and_first_chunk_in_one_write(case, monkeypatch):
    monkeypatch.setattr(util, "http_date", lambda *_: "Mon, 23 Nov 2026 12:00:00 GMT")
    method, status, headers, body = CASES[case]
    ours = respond(SingleWriteResponse, method, status, headers, body)
    gunicorns = respond(wsgi.Response, method, status, headers, body)
    assert b"".join(ours) == b"".join(gunicorns)
    assert ours[0].startswith(b"HTTP/1.1 " + status.encode())
    if body and body[0] and method != "HEAD" and not status.startswith("304"):
        assert body[0] in ours[0]  # the first body bytes travel with the headers
    assert len(ours) == max(1, len(gunicorns) - 1)  # one write fewer: the header block's own


def test_file_responses_do_not_use_sendfile():
    """sendfile(2) would overtake the held header block; files go through write() instead."""
    request = SimpleNamespace(method="GET", version=(1, 1), should_close=lambda: False)
    assert SingleWriteResponse(request, RecordingSocket(), Config()).sendfile(object()) is False


PROBE_APP = '''
from gunicorn.http import wsgi

def app(environ, start_response):
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one ", b"two ", b"three"])
    body = wsgi.Response.__name__.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.fixture
def probe_server(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE_APP)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT / 'app'}", "PORT": str(port), "BIND_HOST": "127.0.0.1",
           "WEB_CONCURRENCY": "1"}
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "app" / "gunicorn.conf.py"),
                                "probe:app"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def answers():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                connection.request("GET", "/")
                return connection.getresponse().status == 200
            except OSError:
                return False
            finally:
                connection.close()
        wait_until(answers, 30, "gunicorn with the probe app")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_real_gunicorn_workers_use_it_and_keep_alive_still_works(probe_server):
    connection = http.client.HTTPConnection("127.0.0.1", probe_server, timeout=5)
    connection.request("GET", "/")
    first = connection.getresponse()
    assert (first.status, first.read()) == (200, b"SingleWriteResponse")
    connection.request("GET", "/stream")  # the same connection: framing left nothing behind
    streamed = connection.getresponse()
    assert streamed.getheader("Transfer-Encoding") == "chunked" and streamed.read() == b"one two three"
    connection.request("HEAD", "/")
    head = connection.getresponse()
    assert head.status == 200 and head.read() == b""
    connection.close()
