"""One-peer change through a running `wggw agent` on a large gateway (issue 12): the agent's
own part of `peer add --apply` / `peer remove --apply` (its log line's `ms`, timed inside the
agent from the request read to the reply), the whole command as the operator runs it (a fresh
`wggw` process, timed from outside), and the naive regenerate + `wg syncconf` on a gateway of
the same size in the same round (so each ratio pairs runs under the same load).

The agent runs with `--resync 3600`: the periodic full reconcile is the safety net's cost,
measured elsewhere (no-op resync), not a one-peer figure; a resync landing in the middle of a
command would make the command wait for it. Each site has its own WGGW_RUN_DIR, so the agent's
lock and socket are this run's alone.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import controlplane as cp
from . import fleet as fleet_mod
from .lab import REPO, Bench
from .measure import env, naive, summary, wggw

START_TIMEOUT = 900.0  # the agent's first converge at 50,000 peers takes seconds (more under load)
LINE = re.compile(r" peer tenant=\S+ peer=\S+ changes=(\d+) ms=([\d.]+) path=(\w+) cpu_ms=([\d.]+)")


class Agent:
    """`wggw agent` in the site's gateway namespace; stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, ns: str, state_dir: Path, log_path: Path) -> None:
        self.log_path = log_path
        argv = [sys.executable, "-m", "wggw.cli.entry", "--state-dir", str(state_dir)]
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv, "agent", "--resync", "3600"],
                env=env(),
                cwd=REPO,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while "converged trigger=start" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"agent did not start: {self.log()[-2000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def parts(self) -> list[tuple[int, float, str, float]]:
        """(changes, ms, path, CPU ms) of every one-peer request so far, in order."""
        return [(int(c), float(ms), p, float(cpu)) for c, ms, p, cpu in LINE.findall(self.log())]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def through_agent(bench: Bench, tenants: int, peers: int, repeats: int, log) -> dict:
    """`repeats` adds then `repeats` removes through the agent, each paired with a naive run."""
    label = f"op{tenants * peers}"  # agent.py has the ag* sites
    run_dir = bench.workdir / f"{label}-run"
    run_dir.mkdir(mode=0o700)
    saved = os.environ.get("WGGW_RUN_DIR")
    os.environ["WGGW_RUN_DIR"] = str(run_dir)  # the agent, the CLI, wireguard-go's pid file
    try:
        return _measure(bench, label, tenants, peers, repeats, log)
    finally:
        if saved is None:
            os.environ.pop("WGGW_RUN_DIR", None)
        else:
            os.environ["WGGW_RUN_DIR"] = saved


def _measure(bench: Bench, label: str, tenants: int, peers: int, repeats: int, log) -> dict:
    base = fleet_mod.make("x", tenants, peers)
    site, fl, _ = cp.wggw_site(bench, label, base)
    nsite, _, _, spec = cp.naive_site(bench, f"n{label}", base)
    sd = site.dir / "state"
    tenant = fl.tenant_list[-1].name
    agent = None
    try:
        agent = Agent(site.gw, sd, site.dir / "agent.log")
        log(f"agent up at {tenants * peers} peers")
        whole: dict[str, list[float]] = {"add": [], "remove": []}
        naive_s: dict[str, list[float]] = {"add": [], "remove": []}
        for verb in ("add", "remove"):
            for r in range(repeats):
                sample = wggw(site.gw, sd, "peer", verb, f"{tenant}/ag{r}", "--apply")
                if "applied by the wggw agent" not in sample.stdout:
                    raise RuntimeError(f"not applied by the agent: {sample.stdout}")
                whole[verb].append(sample.seconds)
                naive_s[verb].append(naive(nsite.gw, verb, str(spec)).seconds)
        parts = agent.parts()
        if len(parts) != 2 * repeats:
            raise RuntimeError(f"{len(parts)} agent log lines for {2 * repeats} changes")
        out: dict = {"tenants": tenants, "peers": tenants * peers, "repeats": repeats}
        for i, verb in enumerate(("add", "remove")):
            mine = parts[i * repeats : (i + 1) * repeats]
            ms, cpu = [p[1] for p in mine], [p[3] for p in mine]
            out[verb] = {
                "agent_ms": {**summary(ms), "p99": p99(ms)},
                "agent_cpu_ms": {**summary(cpu), "p99": p99(cpu)},
                "paths": sorted({p[2] for p in mine}),
                "whole_s": summary(whole[verb]),
                "naive_s": summary(naive_s[verb]),
                "whole_over_naive": summary(
                    [a / b for a, b in zip(whole[verb], naive_s[verb], strict=True)]
                ),
            }
            log(
                f"one-peer {verb} through the agent at {tenants * peers} peers: agent "
                f"p50 {summary(ms)['median']:.2f} ms p99 {p99(ms):.2f} ms; whole "
                f"{out[verb]['whole_s']['median']:.3f}s vs naive "
                f"{out[verb]['naive_s']['median']:.3f}s "
                f"({out[verb]['whole_over_naive']['median']:.2f}x)"
            )
        return out
    finally:
        if agent is not None:
            agent.stop()
        site.close()
        nsite.close()


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """The report's rows (benchmarks/report.py): agent's part, whole command, naive, ratio."""
    out = []
    for row in results.get("one_peer_agent", []):
        n = row["peers"]
        for verb in ("add", "remove"):
            v = row[verb]
            ms = v["agent_ms"]
            out.append(
                (
                    f"peer {verb} --apply through the agent at {n} peers: agent's part",
                    f"p50 {ms['median']:.2f} ms, p99 {ms['p99']:.2f} ms (n={ms['n']}); CPU p50 "
                    f"{v['agent_cpu_ms']['median']:.2f} ms, p99 {v['agent_cpu_ms']['p99']:.2f} ms",
                    "-",
                    f"path {','.join(v['paths'])}; target <= 10 ms, flat in the peer count",
                )
            )
            ratio = v["whole_over_naive"]
            out.append(
                (
                    f"peer {verb} --apply through the agent at {n} peers: whole command",
                    f"{v['whole_s']['median']:.3f}s [{v['whole_s']['min']:.3f}-"
                    f"{v['whole_s']['max']:.3f}]",
                    f"{v['naive_s']['median']:.3f}s",
                    f"wggw/naive {ratio['median']:.2f}x [{ratio['min']:.2f}-{ratio['max']:.2f}]"
                    "; target <= 0.5x",
                )
            )
    return out
