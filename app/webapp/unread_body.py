"""A request body the application did not read is read (and dropped) before the answer goes out. Otherwise Gunicorn
answered, say, a 404 to a 1 MB POST while nginx was still sending the body, closed, and nginx counted the broken
pipe as a failure of that instance (max_fails): a few dozen such requests took every instance out, 502 for
everyone. Bounded by MAX_CONTENT_LENGTH (a longer body is a 413 and its connection closes), and nginx sends at most
client_max_body_size."""

from __future__ import annotations

from flask import Flask, request


def init_unread_body_draining(app: Flask) -> None:
    @app.after_request
    def drain(response):
        length = request.content_length
        if length and length <= (app.config["MAX_CONTENT_LENGTH"] or 0):
            try:
                while request.stream.read(65536):
                    pass
            except Exception:  # noqa: BLE001 the client left, or its body is broken: the answer stands
                pass
        return response
