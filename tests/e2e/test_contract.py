"""The API against its own OpenAPI description: schemathesis with every check and both positive and negative data
(and its stateful phase, which chains create, read, update and delete), on the real Gunicorn with PostgreSQL, the
replica and Redis. Seeded and bounded in time, so CI sees the same run each time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_every_operation_meets_its_description(topology, tmp_path):
    direct = f"http://127.0.0.1:{topology.gunicorns[0].port}"
    done = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{direct}/api/openapi.json", "--checks", "all", "--mode", "all",
         "--max-examples", "15", "--generation-deterministic", "--max-time", "60", "--no-color",
         "--header", f"Authorization: Bearer {topology.token}", "--report", "junit",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Tested: 6" in done.stdout  # every operation was reached
    assert list(tmp_path.glob("junit*.xml"))  # the run's report, for CI's artifacts
