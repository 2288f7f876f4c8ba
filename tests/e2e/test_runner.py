"""The native runner's lifecycle: `up` prints the URLs, Ctrl-C or `down` stops everything, nothing stays behind."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local.servers import wait_until

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("postgres -D", "redis-server", "gunicorn", "nginx: master")


def server_processes() -> list[str]:
    found = []
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = status.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(marker in command for marker in SERVERS):
            found.append(command)
    return found


@pytest.fixture
def runner(tmp_path):
    before = set(server_processes())
    log = tmp_path / "up.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "deploy.local.run", "up", "--instances", "2"], cwd=ROOT,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "up:" in log.read_text(), 120, "make local")
        yield process, log, before
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)


def test_up_prints_the_urls_and_ctrl_c_stops_everything(runner):
    process, log, before = runner
    text = log.read_text()
    assert "https://localhost:" in text and "(nginx, HTTPS" in text and text.count("(gunicorn ") == 2
    assert "(streaming replica)" in text
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 0
    assert "stopped" in log.read_text()
    assert set(server_processes()) <= before
    assert not (ROOT / ".local" / "current.json").exists()


def test_down_from_another_shell_stops_everything(runner):
    process, log, before = runner
    down = subprocess.run([sys.executable, "-m", "deploy.local.run", "down"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert down.returncode == 0 and "stopped nginx" in down.stdout
    assert process.wait(timeout=120) == 0
    wait_until(lambda: set(server_processes()) <= before, 30, "every server gone")


def test_a_second_up_is_refused_while_one_runs(runner):
    second = subprocess.run([sys.executable, "-m", "deploy.local.run", "up"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ})
    assert second.returncode == 2 and "already running" in second.stderr
