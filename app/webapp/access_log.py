"""Gunicorn's logs as JSON lines, like the application's: the access log built with json.dumps (Gunicorn's own
format string escapes quotes only: a backslash or a control character in a path or a User-Agent would break the
line), and Gunicorn's own messages (starting, workers booting, errors) through the application's JSON formatter, so
a log pipeline parses every line the container writes."""

import json
import time

from gunicorn.glogging import Logger

from webapp.logs import json_formatter


class JsonLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(json_formatter())

    def access(self, resp, req, environ, request_time):
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.logconfig_dict or self.cfg.syslog):
            return
        atoms = self.atoms(resp, req, environ, request_time)
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "logger": "gunicorn.access",
            "remote_addr": atoms["h"],
            "method": atoms["m"],
            "path": atoms["U"],
            "query": atoms["q"],
            "status": resp.status_code if hasattr(resp, "status_code") else atoms["s"],
            "bytes": atoms["B"],
            "duration_us": atoms["D"],
            "request_id": dict(resp.headers).get("X-Request-ID", "-") if hasattr(resp, "headers") else "-",
            "user_agent": atoms["a"],
        }
        try:
            self.access_log.info(json.dumps(line, default=str))
        except Exception:  # noqa: BLE001 as Gunicorn's own access(): a log failure must not fail the request
            self.exception("failed to write the access log line")
