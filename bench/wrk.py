"""Run wrk against one URL and read its figures: requests/s, p50 and p99 in ms, errors (non-2xx/3xx + socket)."""

from __future__ import annotations

import re
import subprocess


def wrk(url: str, seconds: int, connections: int = 16, threads: int = 2) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True, timeout=seconds + 60).stdout

    def latency(label):
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": latency("50%"),
            "p99": latency("99%"), "errors": (int(non_2xx.group(1)) if non_2xx else 0)
            + (sum(map(int, sockets.groups())) if sockets else 0)}
