"""Gunicorn's logs as JSON lines, like the application's: the access log built with json.dumps (Gunicorn's own
format string escapes quotes only: a backslash or a control character in a path or a User-Agent would break the
line), and Gunicorn's own messages (starting, workers booting, errors) through the application's JSON formatter, so
a log pipeline parses every line the container writes."""

import json
import os
import sys
import threading
import time

from gunicorn.glogging import Logger

from webapp.logs import json_formatter


class JsonLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(json_formatter())
        # The access log on stdout (the containers' case) is written straight to the file descriptor, one write
        # per line under a lock of its own: the logging module's record, handler lock and flush were an eighth of
        # a /health request (docs/benchmarks.md). Anywhere else it goes through logging, as Gunicorn's does.
        try:
            self._stdout = sys.stdout.fileno() if cfg.accesslog == "-" else None
        except (AttributeError, OSError, ValueError):  # a stdout without a descriptor (a test's capture)
            self._stdout = None
        self._stdout_lock = threading.Lock()

    def access(self, resp, req, environ, request_time):
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.logconfig_dict or self.cfg.syslog):
            return
        # The fields straight from the request and the response: Gunicorn's atoms() formats every request header,
        # response header and environ entry for each line, none of which this line uses.
        request_id = "-"
        for name, value in getattr(resp, "headers", None) or ():
            if name == "X-Request-ID":
                request_id = value
                break
        sent = getattr(resp, "sent", None)
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "logger": "gunicorn.access",
            "remote_addr": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING"),
            "status": resp.status_code if hasattr(resp, "status_code") else str(resp.status).split(None, 1)[0],
            "bytes": sent,
            "duration_us": request_time.seconds * 1_000_000 + request_time.microseconds,
            "request_id": request_id,
            "user_agent": environ.get("HTTP_USER_AGENT", "-"),
        }
        try:
            text = json.dumps(line, default=str)
            if self._stdout is None:
                self.access_log.info(text)
            else:
                self._write(f"{text}\n".encode())
        except Exception:  # noqa: BLE001 as Gunicorn's own access(): a log failure must not fail the request
            self.exception("failed to write the access log line")

    def _write(self, data: bytes) -> None:
        with self._stdout_lock:
            while data:
                data = data[os.write(self._stdout, data):]
