"""The resident agent at scale, and how fast it repairs each kind of fault.

`scale`: a gateway of tenants x peers (real wireguard-go): `apply` (cold), `plan` (nothing to
do), `status`, wireguard-go's RSS; then `wggw agent` on it, idle for a window while a scraper
hits /metrics every `interval` seconds as Prometheus would: the agent's CPU share of one core
over the window (utime + stime from /proc/PID/stat), its RSS at the end (steady state) and its
peak, and the duration of each no-op periodic resync (from the agent's own histogram).

`repairs`: with the agent running, each fault kind `trials` times; repair time = the fault
command returned -> the plan is empty again (a probe process in the namespace plans in a
loop), plus an exact check for what a plan of digests cannot see (an edited map element;
a killed wireguard-go's device back under a new index). p50 and p99 (nearest rank).

The agent runs with `--max-repairs 1000` (20 trials a minute of one kind would otherwise be
rationed by the back-off, as a tool fighting wggw is) and its own runtime directory inside
the benchmark's work dir (another agent on this host cannot collide with it).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from wggw.core import naming

from . import fleet as fleet_mod
from .lab import REPO, Bench, Site, egress, pool
from .measure import env, in_ns, rss_mb, summary, wggw

PORT = 9586
TABLE0 = 60000  # tenant t0's routing table (fleet.make numbers them from 60000)


@contextmanager
def own_runtime_dir(path: Path) -> Iterator[None]:
    """Every wggw command of this part (and the agent) keeps its runtime files in `path`."""
    old = os.environ.get("WGGW_RUN_DIR")
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ["WGGW_RUN_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WGGW_RUN_DIR", None)
        else:
            os.environ["WGGW_RUN_DIR"] = old


class AgentProc:
    """`wggw agent` in a site's gateway namespace (`ip netns exec` execs Python in place, so
    the PID is the agent's); its log is a file in the site's directory."""

    def __init__(self, site: Site, state: Path, *args: str, timeout: float = 900.0) -> None:
        self.log_path = site.dir / f"agent-{time.monotonic_ns()}.log"
        argv = [sys.executable, "-m", "wggw.cli.app", "--state-dir", str(state), "agent"]
        argv += ["--metrics-listen", f"127.0.0.1:{PORT}", "--max-repairs", "1000", *args]
        self.started = time.monotonic()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", site.gw, *argv],
                env=env(),
                cwd=REPO,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        text = self.wait_log("converged trigger=start", timeout)
        self.start_s = time.monotonic() - self.started
        m = re.search(r"converged trigger=start changes=(\d+) ms=([\d.]+)", text)
        self.start_changes, self.start_ms = (int(m[1]), float(m[2])) if m else (-1, -1.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if text.count(needle) >= count:
                return text
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {text[-2000:]}")
            time.sleep(0.01)
        raise RuntimeError(f"agent log lacks {needle!r} x{count} after {timeout}s")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MB."""
        got = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                got[key] = int(value.split()[0]) / 1024
        return got["VmRSS"], got["VmHWM"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wireguard_go_mb(ns: str) -> float:
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return max(
        (rss_mb(int(p)) for p in pids.split() if b"wireguard-go" in _cmdline(int(p))),
        default=0.0,
    )


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _resyncs(scrapes: list[dict]) -> list[float]:
    """Each periodic resync's duration: the histogram's sum step between two scrapes whose
    count grew by exactly one."""
    out = []
    for a, b in zip(scrapes, scrapes[1:], strict=False):
        ra, rb = a["reconcile"].get("resync", {}), b["reconcile"].get("resync", {})
        if rb.get("count", 0) - ra.get("count", 0) == 1:
            out.append(rb["sum"] - ra.get("sum", 0.0))
    return out


def idle(site: Site, agent: AgentProc, interval: float, count: int) -> dict:
    """The agent idle while a scraper in the namespace hits /metrics `count` times."""
    cpu0, t0 = agent.cpu_seconds(), time.monotonic()
    argv = [sys.executable, "-m", "benchmarks.scraper", str(PORT), str(interval), str(count)]
    out = in_ns(site.gw, argv, timeout=interval * count + 600).stdout
    wall = time.monotonic() - t0
    share = (agent.cpu_seconds() - cpu0) / wall
    scrapes = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    rss, hwm = agent.memory_mb()
    resyncs = _resyncs(scrapes)
    return {
        "window_s": wall,
        "scrape_interval_s": interval,
        "scrapes": len(scrapes),
        "scrape_s": summary([s["seconds"] for s in scrapes]),
        "scrape_bytes": max(s["bytes"] for s in scrapes),
        "cpu_share": share,
        "rss_mb": rss,
        "peak_rss_mb": hwm,
        "resync_s": summary(resyncs) if resyncs else None,
        "loadavg": os.getloadavg(),
    }


def resync_cpu(site: Site, agent: AgentProc, resync: float) -> dict:
    """CPU seconds per no-op resync (less at the mercy of other load than its wall time):
    the agent's CPU over a window of `resync` + 5 s without scrapes, divided by the resyncs
    in it (the histogram before and after); an upper bound, as it includes the idle loop."""
    argv = [sys.executable, "-m", "benchmarks.scraper", str(PORT), "0", "1"]

    def count() -> float:
        line = in_ns(site.gw, argv).stdout.splitlines()[0]
        return json.loads(line)["reconcile"].get("resync", {}).get("count", 0.0)

    before, cpu0 = count(), agent.cpu_seconds()
    time.sleep(resync + 5.0)
    cpu, after = agent.cpu_seconds() - cpu0, count()
    n = int(after - before)
    return {"resyncs": n, "cpu_s_per_resync": cpu / n if n else None}


def scale(bench: Bench, tenants: int, peers: int, cfg: dict, log) -> dict:
    """CLI rows and the agent's steady state at tenants x peers (see the module docstring)."""
    site = bench.site(f"ag{tenants * peers}")
    sd = site.dir / "state"
    try:
        with own_runtime_dir(site.dir / "run"):
            fleet_mod.write_store(fleet_mod.make("x", tenants, peers).on(site.ifname), sd)
            cold = wggw(site.gw, sd, "apply", "-q", timeout=1800)
            r = cfg["agent_repeats"]
            plan = [wggw(site.gw, sd, "plan", "--detailed-exitcode") for _ in range(r)]
            status = [wggw(site.gw, sd, "status", "--json", timeout=900) for _ in range(r)]
            out = {
                "tenants": tenants,
                "peers": tenants * peers,
                "apply_s": cold.seconds,
                "plan_s": summary([s.seconds for s in plan]),
                "status_s": summary([s.seconds for s in status]),
                "wggw_maxrss_mb": max(s.maxrss_mb for s in [cold, *plan, *status]),
                "wireguard_go_mb": wireguard_go_mb(site.gw),
            }
            agent = AgentProc(site, sd, "--resync", str(cfg["agent_resync"]))
            try:
                out["agent_start_s"] = agent.start_s
                out["agent_start_changes"] = agent.start_changes
                out["agent"] = idle(site, agent, cfg["scrape_interval"], cfg["scrapes"])
                out["agent"]["resync_cpu"] = resync_cpu(site, agent, cfg["agent_resync"])
            finally:
                agent.stop()
    finally:
        site.close()
    a = out["agent"]
    log(
        f"agent at {out['peers']} peers: apply {out['apply_s']:.2f}s, "
        f"plan {out['plan_s']['median']:.2f}s, status {out['status_s']['median']:.2f}s; "
        f"agent RSS {a['rss_mb']:.0f} MB (peak {a['peak_rss_mb']:.0f}), "
        f"idle CPU {a['cpu_share'] * 100:.2f}%, resync "
        + (f"{a['resync_s']['median']:.3f}s" if a["resync_s"] else "-")
        + f" (CPU {a['resync_cpu']['cpu_s_per_resync'] or 0:.3f}s)"
    )
    return out


# --- repairs ----------------------------------------------------------------------------


def _ip(site: Site, *args: str, stdin: str | None = None) -> str:
    res = subprocess.run(
        ["ip", "-n", site.gw, *args], input=stdin, capture_output=True, text=True, check=True
    )
    return res.stdout


def _nft(site: Site, *args: str, stdin: str | None = None) -> None:
    argv = ["ip", "netns", "exec", site.gw, "nft", *args]
    subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)


def _owned_rules(site: Site) -> list[tuple[int, str]]:
    out = []
    for line in _ip(site, "-4", "rule", "show").splitlines():
        pref, _, rest = line.partition(":")
        if pref.isdigit() and naming.owns_rule_pref(int(pref)):
            out.append((int(pref), rest))
    return out


def _ifindex(site: Site) -> int:
    return int(_ip(site, "-o", "link", "show", "dev", site.ifname).split(":", 1)[0])


def _wg_pid(site: Site) -> int:
    pids = subprocess.run(["ip", "netns", "pids", site.gw], capture_output=True, text=True)
    return next(int(p) for p in pids.stdout.split() if b"wireguard-go" in _cmdline(int(p)))


def _faults(site: Site) -> dict[str, Callable[[], dict]]:
    """Fault kind -> inflict it; returns the probe's extra check for it."""
    snat = f"{pool(0)} : {egress(0)}"

    def rules_deleted() -> dict:
        lines = [f"rule del pref {pref}" for pref, _ in _owned_rules(site)]
        _ip(site, "-4", "-batch", "-", stdin="\n".join(lines) + "\n")
        return {}

    def address_removed() -> dict:
        text = _ip(site, "-4", "-o", "addr", "show", "dev", "uplink0")
        addr = re.search(rf"inet ({re.escape(egress(0))}/\d+)", text)[1]
        _ip(site, "addr", "del", addr, "dev", "uplink0")
        return {}

    def element_edited() -> dict:
        _nft(
            site,
            "-f",
            "-",
            stdin=f"delete element inet wggw snat_v4 {{ {pool(0)} }}\n"
            f"add element inet wggw snat_v4 {{ {pool(0)} : 198.18.255.99 }}\n",
        )
        return {"element": ["snat_v4", snat]}

    def uplink_flap() -> dict:
        _ip(site, "link", "set", "uplink0", "down")
        _ip(site, "link", "set", "uplink0", "up")
        return {}

    def wg_killed() -> dict:
        old = _ifindex(site)
        os.kill(_wg_pid(site), signal.SIGKILL)
        return {"link": [site.ifname, old]}

    return {
        "nft flush ruleset": lambda: (_nft(site, "flush", "ruleset"), {})[1],
        "nft table deleted": lambda: (_nft(site, "delete", "table", "inet", "wggw"), {})[1],
        "ip rules deleted": rules_deleted,
        "tenant table flushed": lambda: (
            _ip(site, "-4", "route", "flush", "table", str(TABLE0)),
            {},
        )[1],
        "address removed": address_removed,
        "uplink flap": uplink_flap,
        "element edited": element_edited,
        "wireguard-go killed": wg_killed,
    }


class Probe:
    def __init__(self, site: Site, state: Path) -> None:
        argv = [sys.executable, "-m", "benchmarks.repairprobe", str(state)]
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", site.gw, *argv],
            env=env(),
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("repair probe did not start")

    def wait(self, bound: float, extra: dict) -> float:
        self.proc.stdin.write(json.dumps({"bound": bound, **extra}) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip().split(" ", 1)
        if answer[0] != "empty":
            raise RuntimeError(f"not repaired after {bound}s: {answer}")
        return float(answer[1])

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _trials(agent: AgentProc, probe: Probe, inflict, trials: int) -> tuple[list[float], int]:
    """Repair times, and how many trials the agent's log shows an error in (a round that
    failed part-way; its retry, with nothing left to do, logs no `converged` line)."""
    times, errors = [], 0
    for _ in range(trials):
        log = agent.log()
        before, errs = log.count("converged trigger=drift"), log.count(" error ")
        extra = inflict()
        t_fault = time.monotonic()  # the fault is in place (the command returned)
        done = probe.wait(10.0, extra)
        times.append(max(0.0, done - t_fault))
        deadline = time.monotonic() + 10.0  # the agent's round is over before the next fault
        while time.monotonic() < deadline:
            log = agent.log()
            if log.count("converged trigger=drift") > before:
                break
            if log.count(" error ") > errs:
                errors += 1
                break
            time.sleep(0.01)
        time.sleep(0.2)  # the next fault on a settled host
    return times, errors


def repairs(bench: Bench, tenants: int, peers: int, trials: int, log) -> dict:
    """p50/p99 time to repair per fault kind, with the agent running."""
    site = bench.site(f"rp{tenants * peers}")
    sd = site.dir / "state"
    out: dict = {"tenants": tenants, "peers": tenants * peers, "trials": trials, "kinds": {}}
    try:
        with own_runtime_dir(site.dir / "run"):
            fleet_mod.write_store(fleet_mod.make("x", tenants, peers).on(site.ifname), sd)
            agent = AgentProc(site, sd)
            probe = Probe(site, sd)
            try:
                for kind, inflict in _faults(site).items():
                    times, errors = _trials(agent, probe, inflict, trials)
                    out["kinds"][kind] = {
                        "agent_errors": errors,
                        "p50_s": statistics.median(times),
                        "p99_s": nearest_rank(times, 0.99),
                        "runs": [round(t, 6) for t in times],
                        "loadavg": os.getloadavg(),
                    }
                    log(
                        f"repair {kind} at {tenants * peers} peers: "
                        f"p50 {statistics.median(times) * 1000:.0f} ms, "
                        f"p99 {nearest_rank(times, 0.99) * 1000:.0f} ms over {trials} "
                        f"({errors} with an agent error)"
                    )
            finally:
                probe.close()
                agent.stop()
    finally:
        site.close()
    return out
