"""The small things an operator meets first: a command with a configuration that must not run says so in one line
(exit 2, like the entrypoint), log lines are plain JSON with an offset on every time, and what must not be
committed is ignored."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_flask_command_with_a_refused_configuration_is_one_line_and_exit_2():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "SECRET_KEY"))}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "db", "upgrade"], cwd=ROOT / "app",
                          env={**env, "APP_ENV": "production"}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    line = json.loads(done.stderr)
    assert line["level"] == "ERROR" and "refusing to start with APP_ENV=production: no database" in line["message"]


def test_log_lines_carry_an_offset_and_no_colour_codes(app, capsys):
    logging.getLogger("werkzeug").warning("\x1b[33mGET /x HTTP/1.1\x1b[0m %s", 404)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "GET /x HTTP/1.1 404"
    assert line["time"].endswith("+00:00") and "T" in line["time"]


def test_the_development_database_is_not_committed():
    done = subprocess.run(["git", "check-ignore", "app/development.sqlite3"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0


def test_local_servers_make_their_passwords_per_run():
    from deploy.local.servers import RedisServer

    first, second = RedisServer(), RedisServer()
    try:
        assert first.password != second.password and len(first.password) >= 24
    finally:
        for server in (first, second):
            server.destroy()
