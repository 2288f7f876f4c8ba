"""A Gunicorn response that puts the status line, the headers and the first body chunk on the wire in one write.

Why: Gunicorn sends the headers, releases the GIL inside sendall, and sends the body in a second write. A worker
killed between the two (OOM kill, crash, kill -9) leaves nginx holding headers it has already forwarded, so it can
no longer retry the request on another instance: the client gets a truncated response. With one write a dying
worker has sent either nothing (nginx retries an idempotent request elsewhere) or the whole response.

Installed in each worker by gunicorn.conf.py (post_worker_init). Only the wire writes change; Gunicorn's rules
(Content-Length, chunking, no body for HEAD/204/304) stay in the base class.
"""

from gunicorn.http import wsgi


class SingleWriteResponse(wsgi.Response):
    """Holds the header block until the first body bytes (or the end of the response) and sends them together."""

    held = b""

    def send_headers(self):
        if self.headers_sent:
            return
        lines = self.default_headers() + [f"{name}: {value}\r\n" for name, value in self.headers]
        self.held = ("".join(lines) + "\r\n").encode("latin-1")
        self.headers_sent = True

    def _emit_body(self, data):
        if self.chunked:
            data = b"%X\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(self._take_held() + data)

    def close(self):
        self.send_headers()
        data = self._take_held() + (b"0\r\n\r\n" if self.chunked else b"")
        if data:
            self.sock.sendall(data)

    def sendfile(self, respiter):
        """No sendfile(2): the header block must not be overtaken by the file. Files are nginx's job here; the
        rare file the app sends goes through write() in blocks."""
        return False

    def _take_held(self):
        held, self.held = self.held, b""
        return held


def install():
    """Make Gunicorn's HTTP/1 workers build SingleWriteResponse objects (wsgi.create looks the class up here)."""
    wsgi.Response = SingleWriteResponse
