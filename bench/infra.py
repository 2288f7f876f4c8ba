"""Infrastructure speed targets, measured (issue targets are met here, not in timed tests).

- offline plan of prod: wall time of `python -m infra.plan --stack prod`, interpreter start included, median of N
- the infra unit suite: wall time of `pytest tests/infra`, median of 3
Prints one line per figure; copy them into docs/benchmarks.md with the machine and date.
"""

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wall(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def report(label: str, times: list[float], target: float) -> bool:
    median = statistics.median(times)
    ok = median <= target
    print(f"{label}: median {median:.2f} s (min {min(times):.2f}, max {max(times):.2f}, n={len(times)}); "
          f"target <= {target} s: {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}")
    wall([sys.executable, "-m", "infra.plan", "--stack", "prod"], 1)  # warm the file cache and .pyc files
    results = [
        report("offline plan of prod", wall([sys.executable, "-m", "infra.plan", "--stack", "prod"], 11), 2.0),
        report("infra unit suite", wall([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                         "tests/infra"], 3), 20.0),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
