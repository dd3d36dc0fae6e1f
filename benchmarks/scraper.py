"""Run inside a gateway namespace: scrape the agent's /metrics every INTERVAL seconds, COUNT
times, as Prometheus would, and print one JSON line per scrape (when, how long, how big, and
the agent's reconcile histogram by trigger), so the benchmark can tell the agent's idle CPU
with scrapes and the duration of each periodic resync (the histogram's sum grows by exactly
one resync's duration between two scrapes whose count grew by one).

    python -m benchmarks.scraper PORT INTERVAL COUNT
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.request

SERIES = re.compile(
    r'^wggw_reconcile_duration_seconds_(count|sum)\{trigger="([a-z+]+)"\} ([0-9.e+-]+)$', re.M
)


def scrape(port: int) -> dict:
    start = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    took = time.monotonic() - start
    hist: dict[str, dict[str, float]] = {}
    for what, trigger, value in SERIES.findall(text):
        hist.setdefault(trigger, {})[what] = float(value)
    return {"t": start, "seconds": took, "bytes": len(text), "reconcile": hist}


def main(port: int, interval: float, count: int) -> None:
    next_at = time.monotonic()
    for _ in range(count):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        print(json.dumps(scrape(port)), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]))
