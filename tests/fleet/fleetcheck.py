"""Traffic from every tenant of the fleet lab and what the checks read from it: one generator
per tenant client (tests/faults/traffic.py: a fresh TCP connection per request, v4 and v6, each
answer naming the source the internet host saw), when each stream answered correctly, the gaps
between correct answers, and the answers that came back with a wrong source."""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wggw.lab.fleet import INET_V4, INET_V6, FleetLab

TRAFFIC_SCRIPT = Path(__file__).resolve().parent.parent / "faults" / "traffic.py"


@dataclass
class Traffic:
    lab: FleetLab
    egress: dict[tuple[str, int], str]  # (tenant, family) -> its egress address
    logs: dict[str, Path] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)

    def start(self, interval: float = 0.1, timeout: float = 0.5) -> Traffic:
        tag = secrets.token_hex(3)
        for tenant in sorted({t for t, _ in self.egress}):
            log = self.lab.workdir / f"traffic-{tenant}-{tag}.jsonl"
            log.touch()
            argv = [sys.executable, str(TRAFFIC_SCRIPT), tenant, str(log), INET_V4, INET_V6,
                    str(interval), str(timeout), "600"]  # fmt: skip
            proc = self.lab.clients[tenant].spawn(
                argv, marker=str(TRAFFIC_SCRIPT), log=self.lab.workdir / "traffic.err"
            )
            self.logs[tenant] = log
            self.pids.append(proc.pid)
        return self

    def stop(self) -> None:
        pids, self.pids = self.pids, []
        for pid in pids:
            self.lab.clients[next(iter(self.lab.clients))].procs.stop(pid, timeout=3.0)

    def records(self, since: float = 0.0) -> Iterator[tuple[str, dict]]:
        for tenant, log in self.logs.items():
            for line in log.read_text().splitlines():
                try:
                    r = json.loads(line)
                except ValueError:  # a line cut short by the stop
                    continue
                if r["t0"] >= since:
                    yield tenant, r

    def wrong(self, since: float = 0.0) -> list[tuple[str, dict]]:
        """Answers that came back naming any source but the stream's own egress."""
        return [
            (t, r)
            for t, r in self.records(since)
            if r["src"] is not None and r["src"] != self.egress[(t, r["v"])]
        ]

    def correct(self, tenant: str, v: int, since: float = 0.0, until: float = 1e18) -> list:
        """Answer times (t1) of the stream's correct answers to requests started in the window."""
        return sorted(
            r["t1"]
            for t, r in self.records(since)
            if t == tenant and r["v"] == v and r["t0"] < until and r["src"] == self.egress[(t, v)]
        )

    def wait_all_correct(self, since: float, timeout: float) -> set[tuple[str, int]]:
        """Bounded wait until every stream answered correctly to a request started after
        `since`; returns the streams that did."""
        deadline = time.monotonic() + timeout
        while True:
            ok = {k for k in self.egress if self.correct(*k, since=since)}
            if ok == set(self.egress) or time.monotonic() >= deadline:
                return ok
            time.sleep(0.1)


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch inside [start, end] without a correct answer."""
    marks = [start, *(t for t in times if start < t < end), end]
    return max(b - a for a, b in zip(marks, marks[1:], strict=False))
