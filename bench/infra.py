"""Infrastructure speed targets, measured (issue targets are met here, not in timed tests).

- offline plan of prod: wall time of `python -m infra.plan --stack prod`, interpreter start included, median of N
- its import floor, in the same run: a python that imports exactly the modules the plan imports (collector off,
  as the command runs), and the ratio plan / floor
- the infra unit suite: wall time of `pytest tests/infra` in parallel processes as `make test` runs it, median of 3
Prints one line per figure; copy them into docs/benchmarks.md with the machine and date.
"""

import os
import platform
import statistics
import subprocess
import sys
import tempfile
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


MODULES = """
import contextlib, gc, io, json, sys
gc.disable()
before = set(sys.modules)
from infra.offline.plan import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["--stack", "prod"])
json.dump([m for m in sys.modules if m not in before and m.split(".")[0] != "infra"], open(sys.argv[1], "w"))
"""
FLOOR = """
import gc, importlib, json, sys
gc.disable()
for name in json.load(open(sys.argv[1])):
    importlib.import_module(name)
gc.freeze()
"""


def floor_command(directory: Path) -> list[str]:
    """A python importing, in the same order, every module the plan imports that is not the project's own."""
    modules = directory / "modules.json"
    subprocess.run([sys.executable, "-c", MODULES, str(modules)], cwd=ROOT, check=True)
    (directory / "floor.py").write_text(FLOOR)
    return [sys.executable, str(directory / "floor.py"), str(modules)]


# The Makefile's PARALLEL (make bench passes it), so the suite is measured as `make test` runs it.
PARALLEL = os.environ.get("PARALLEL", "-n auto --maxprocesses 4 --dist loadfile").split()


def main() -> int:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}")
    plan = [sys.executable, "-m", "infra.plan", "--stack", "prod"]
    wall(plan, 1)  # warm the file cache and .pyc files
    with tempfile.TemporaryDirectory() as directory:
        floor = floor_command(Path(directory))
        wall(floor, 1)
        plan_times, floor_times = [], []
        for _ in range(11):  # interleaved: noise hits both alike
            plan_times += wall(plan, 1)
            floor_times += wall(floor, 1)
    ratio = statistics.median(plan_times) / statistics.median(floor_times)
    results = [
        report("offline plan of prod", plan_times, 1.3),
        report("its import floor", floor_times, float("inf")),
        ratio <= 1.4,
        report("infra unit suite", wall([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PARALLEL,
                                         "tests/infra"], 3), 12.0),
    ]
    print(f"plan / floor: {ratio:.2f}; target <= 1.4: {'met' if ratio <= 1.4 else 'MISSED'}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
