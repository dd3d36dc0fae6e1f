"""Two rows of the agent part with more samples, alone: the no-op resync at a big gateway,
and the repair of chosen fault kinds. For same-run A/B figures of two checkouts, run it from
each (subprocesses use the wggw of the tree this file lives in: measure.env sets PYTHONPATH).

`resync`: the agent runs with a short `--resync`; a scraper in the namespace reads the
agent's reconcile histogram once per resync period, half a period away from the resyncs
(so a scrape never runs inside a round), and each period's sum step is one resync's
duration (the `agent` part's `_resyncs`). Then the agent's CPU per resync over a window
without scrapes (`resync_cpu`).
`repair`: benchmarks/agent.py's faults, probe and trial loop, only for the kinds asked.

    sudo .venv/bin/python -m benchmarks.agentfocus resync --size 1000x50 --resync 5 --count 16
    sudo .venv/bin/python -m benchmarks.agentfocus repair --size 100x10 --trials 20 \\
        --kind "wireguard-go killed"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from . import agent as agent_mod
from . import fleet as fleet_mod
from .lab import Bench
from .measure import in_ns, summary, wggw
from .run import log

START_LAG = 0.15  # the scraper's Python start-up before its first scrape


def resync(bench: Bench, tenants: int, peers: int, period: float, count: int) -> dict:
    site = bench.site(f"af{tenants * peers}")
    sd = site.dir / "state"
    try:
        with agent_mod.own_runtime_dir(site.dir / "run"):
            fleet_mod.write_store(fleet_mod.make("x", tenants, peers).on(site.ifname), sd)
            wggw(site.gw, sd, "apply", "-q", timeout=1800)
            agent = agent_mod.AgentProc(site, sd, "--resync", str(period))
            try:
                # Resyncs fall at k periods after the start: scrape half-way between them.
                time.sleep(period * 1.5 - START_LAG)
                argv = [sys.executable, "-m", "benchmarks.scraper", str(agent_mod.PORT)]
                out = in_ns(site.gw, [*argv, str(period), str(count)], timeout=period * count + 600)
                scrapes = [json.loads(ln) for ln in out.stdout.splitlines() if ln.startswith("{")]
                resyncs = agent_mod._resyncs(scrapes)
                cpu = agent_mod.resync_cpu(site, agent, period * 4)
                rss, hwm = agent.memory_mb()
            finally:
                agent.stop()
    finally:
        site.close()
    result = {
        "tenants": tenants,
        "peers": tenants * peers,
        "resync_period_s": period,
        "resync_s": summary(resyncs) if resyncs else None,
        "resync_cpu": cpu,
        "rss_mb": rss,
        "peak_rss_mb": hwm,
        "loadavg": os.getloadavg(),
    }
    med = result["resync_s"]["median"] if resyncs else float("nan")
    log(
        f"no-op resync at {tenants * peers} peers: median {med:.3f}s over {len(resyncs)} "
        f"[{min(resyncs, default=0):.3f}-{max(resyncs, default=0):.3f}], "
        f"CPU {cpu['cpu_s_per_resync'] or 0:.3f}s; RSS {rss:.0f} MB; load {os.getloadavg()[0]:.2f}"
    )
    return result


def repair(bench: Bench, tenants: int, peers: int, kinds: list[str], trials: int) -> dict:
    site = bench.site(f"afr{tenants * peers}")
    sd = site.dir / "state"
    out: dict = {"tenants": tenants, "peers": tenants * peers, "trials": trials, "kinds": {}}
    try:
        with agent_mod.own_runtime_dir(site.dir / "run"):
            fleet_mod.write_store(fleet_mod.make("x", tenants, peers).on(site.ifname), sd)
            agent = agent_mod.AgentProc(site, sd)
            probe = agent_mod.Probe(site, sd)
            try:
                faults = agent_mod._faults(site)
                for kind in kinds:
                    times, errors = agent_mod._trials(agent, probe, faults[kind], trials)
                    p50, p99 = statistics.median(times), agent_mod.nearest_rank(times, 0.99)
                    out["kinds"][kind] = {
                        "agent_errors": errors,
                        "p50_s": p50,
                        "p99_s": p99,
                        "runs": [round(t, 6) for t in times],
                        "loadavg": os.getloadavg(),
                    }
                    log(
                        f"repair {kind} at {tenants * peers} peers: p50 {p50 * 1000:.0f} ms, "
                        f"p99 {p99 * 1000:.0f} ms over {trials} ({errors} with an agent error); "
                        f"load {os.getloadavg()[0]:.2f}"
                    )
            finally:
                probe.close()
                agent.stop()
    finally:
        site.close()
    return out


def _size(text: str) -> tuple[int, int]:
    tenants, _, peers = text.partition("x")
    return int(tenants), int(peers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("row", choices=("resync", "repair"))
    ap.add_argument("--size", type=_size, help="TENANTSxPEERS (default 1000x50 / 100x10)")
    ap.add_argument("--resync", type=float, default=5.0, help="the agent's --resync (resync)")
    ap.add_argument("--count", type=int, default=16, help="scrapes, one per period (resync)")
    ap.add_argument("--kind", action="append", help="fault kind (repair; default: all)")
    ap.add_argument("--trials", type=int, default=20, help="trials per kind (repair)")
    ap.add_argument("--json", type=Path, help="where to write the result")
    args = ap.parse_args(argv)
    unknown = set(args.kind or ()) - set(_all_kinds())
    if unknown:
        print(f"unknown fault kind(s): {sorted(unknown)}; known: {_all_kinds()}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("agentfocus needs root (network namespaces, wireguard-go)", file=sys.stderr)
        return 2
    bench = Bench()
    try:
        if args.row == "resync":
            t, p = args.size or (1000, 50)
            result = resync(bench, t, p, args.resync, args.count)
        else:
            t, p = args.size or (100, 10)
            result = repair(bench, t, p, args.kind or _all_kinds(), args.trials)
    finally:
        problems = bench.close()
    result["leftovers"] = problems
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 1 if problems else 0


def _all_kinds() -> list[str]:
    """The fault kinds of the agent part, in its order (names only: no site needed)."""
    return [
        "nft flush ruleset",
        "nft table deleted",
        "ip rules deleted",
        "tenant table flushed",
        "address removed",
        "uplink flap",
        "element edited",
        "wireguard-go killed",
    ]


if __name__ == "__main__":
    sys.exit(main())
