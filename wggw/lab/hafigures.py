"""The HA lab's figures from its logs (pure): per failover cycle, how long until the egress IPs
answer from the new gateway, how long until each client gets a good reply through its tunnel,
and how many wrong-source packets the internet host saw; p50/p99 over cycles.

Input is the text the lab's scripts write (hawatch.py in `inet`, haprobe.py per client); every
time is time.monotonic of one host, so the logs and the harness's own instants compare directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Watch:
    """What `inet` saw: echo replies (time, egress, gateway) and wrong sources (time, line)."""

    echoes: tuple[tuple[float, str, str], ...]
    wrong: tuple[tuple[float, str], ...]


def parse_watch(text: str) -> Watch:
    echoes, wrong = [], []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "e":
            echoes.append((float(parts[1]), parts[2], parts[3]))
        elif len(parts) >= 3 and parts[0] == "w":
            wrong.append((float(parts[1]), " ".join(parts[2:])))
    return Watch(tuple(echoes), tuple(wrong))


def parse_probe(text: str) -> list[tuple[float, float, bool]]:
    """(sent, received, good) per reply a client got."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("g", "b"):
            out.append((float(parts[1]), float(parts[2]), parts[0] == "g"))
    return out


def egress_recovery(watch: Watch, t0: float, gateway: str, egress: Iterable[str]) -> float | None:
    """Seconds from `t0` until every address of `egress` has answered from `gateway` (None: one
    never did)."""
    worst = 0.0
    for addr in egress:
        hits = (t for t, a, g in watch.echoes if t >= t0 and a == addr and g == gateway)
        first = next(hits, None)
        if first is None:
            return None
        worst = max(worst, first - t0)
    return worst


def client_recovery(
    replies: Sequence[tuple[float, float, bool]], t0: float, since: float | None = None
) -> float | None:
    """Seconds from `t0` until the first good reply to a probe sent at or after `since`
    (default `t0`; the instant the failure was complete: a probe that left before may still
    have taken the old path and proves nothing about the new one)."""
    since = t0 if since is None else since
    first = min((r for s, r, good in replies if good and s >= since), default=None)
    return None if first is None else first - t0


def longest_gap(replies: Sequence[tuple[float, float, bool]], t0: float, t1: float) -> float:
    """The longest stretch within [t0, t1] without a good reply (what mending the broken
    gateway costs the clients: a preempting failback, a thawed gateway taking over)."""
    stamps = sorted(r for _s, r, good in replies if good and t0 <= r <= t1)
    edges = [t0, *stamps, t1]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


def wrong_between(watch: Watch, t0: float, t1: float) -> list[str]:
    return [line for t, line in watch.wrong if t0 <= t < t1]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Cycle:
    way: str
    killed: str  # the gateway that was active and got broken
    standby: str  # the one that must take over
    t0: float
    done: float = 0.0  # when the failure was complete (see client_recovery)
    egress_s: float | None = None
    client_s: dict[str, float | None] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    mend_gap_s: float | None = None  # the longest client outage after mending (longest_gap)
    error: str | None = None  # the lab never settled after this cycle (no cycle can follow)

    @property
    def worst_client_s(self) -> float | None:
        vals = list(self.client_s.values())
        return None if not vals or None in vals else max(v for v in vals if v is not None)


def summarize(cycles: Sequence[Cycle]) -> dict[str, object]:
    """p50/p99/max of both recoveries (None counted as a failure), wrong-source total."""
    out: dict[str, object] = {"cycles": len(cycles)}
    out["errors"] = [c.error for c in cycles if c.error]
    for key, get in (("egress_s", lambda c: c.egress_s), ("client_s", lambda c: c.worst_client_s)):
        vals = [get(c) for c in cycles]
        done = [v for v in vals if v is not None]
        out[key] = (
            {
                "p50": round(percentile(done, 50), 3),
                "p99": round(percentile(done, 99), 3),
                "max": round(max(done), 3),
            }
            if done
            else None
        )
        out[f"{key}_missing"] = len(vals) - len(done)
    gaps = [c.mend_gap_s for c in cycles if c.mend_gap_s is not None]
    out["mend_gap_s"] = (
        {"p50": round(percentile(gaps, 50), 3), "max": round(max(gaps), 3)} if gaps else None
    )
    out["wrong_source"] = sum(len(c.wrong) for c in cycles)
    return out


def by_way(cycles: Sequence[Cycle]) -> Mapping[str, dict[str, object]]:
    ways = sorted({c.way for c in cycles})
    return {w: summarize([c for c in cycles if c.way == w]) for w in ways}
