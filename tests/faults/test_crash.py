"""Seeded kill -9 trials (issue 9): the real CLI is killed at a random point of `apply`,
`rotate` and `peer add --apply` in a real namespace lab, and wggw must recover from it.

For each kind a first uninterrupted run measures how long the command takes; each trial then
draws a delay inside that duration from a seeded RNG (past the interpreter's start-up, which
`wggw --version` measures), starts the command and sends SIGKILL once the delay has passed.
A trial counts only if the kill landed while the command ran (it died of SIGKILL; a command
that finished first is drawn again, sooner). After every trial: `PRAGMA integrity_check` of
the store is ok, `apply` converges (exit 0), and `plan --detailed-exitcode` exits 0. At the
end `down` leaves the gateway namespace exactly as it was before wggw touched it.

Figures (per trial: kind, delay, duration of the recovering apply) are printed; run with
`-s` to see them, or set WGGW_CRASH_REPORT=FILE to get them as JSON. Reproduce with:

    .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/faults/test_crash.py

WGGW_CRASH_SEED (default 9) and WGGW_CRASH_TRIALS (per kind, default 11) change the draw.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from wggwtest import require_netns

from wggw.backends import runfiles
from wggw.lab.topology import REPO_ROOT, Lab, new_ifname

SEED = int(os.environ.get("WGGW_CRASH_SEED", "9"))
TRIALS = int(os.environ.get("WGGW_CRASH_TRIALS", "11"))
TENANTS = {
    "acme": ("10.10.0.0/24", "fd00:a::/64", "203.0.113.10", "2001:db8:ffff::10"),
    "globex": ("10.20.0.0/24", "fd00:b::/64", "203.0.113.20", "2001:db8:ffff::20"),
}
PEERS_PER_TENANT = 4
COMMAND_TIMEOUT = 120.0
MAX_REDRAWS = 4  # a command that finished before its kill is tried again, sooner


@dataclass
class Trial:
    kind: str
    n: int
    delay: float  # seconds after the start when SIGKILL was sent
    measured: float  # the uninterrupted duration the delay was drawn within
    startup: float  # `wggw --version` (interpreter start), the lower end of the draw
    redraws: int  # earlier draws whose command finished before the kill (not counted)
    store_written: bool  # the killed command had committed its change to the store
    recover_s: float  # duration of the recovering `apply`
    recover_changes: str  # its last line


FIGURES: list[Trial] = []


# --- the lab -------------------------------------------------------------------------


@dataclass
class CrashLab:
    lab: Lab
    ifname: str
    pristine: dict[str, str]

    @property
    def db(self) -> Path:
        return self.lab.state_dir / "wggw.db"

    def wggw(self, *args: str, ok: Sequence[int] = (0,)) -> subprocess.CompletedProcess[str]:
        return self.lab.wggw(*args, ok_codes=ok, timeout=COMMAND_TIMEOUT)

    def spawn(self, *args: str) -> subprocess.Popen:
        """The real CLI in the gateway namespace (`ip netns exec` execs it: same pid)."""
        argv = [
            "ip",
            "netns",
            "exec",
            self.lab.gw.name,
            sys.executable,
            "-m",
            "wggw.cli.app",
            "--state-dir",
            str(self.lab.state_dir),
            *args,
        ]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
        }
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


@pytest.fixture(scope="module")
def crash_lab() -> Iterator[CrashLab]:
    require_netns("the crash trials", ("ip", "nft", "wireguard-go"))
    with Lab(0) as lab:
        pristine = snapshot(lab)
        ifname = new_ifname("wgk")
        lab.own_ifname(ifname)
        runtime = runfiles.runtime_dir()
        before = set(runtime.glob("*")) if runtime.is_dir() else set()
        try:
            _configure(lab, ifname)
            yield CrashLab(lab, ifname, pristine)
        finally:
            lab.wggw("down", check=False, timeout=COMMAND_TIMEOUT)
            left = (set(runtime.glob("*")) if runtime.is_dir() else set()) - before
            assert not left, f"left in {runtime}: {sorted(p.name for p in left)}"


def _configure(lab: Lab, ifname: str) -> None:
    lab.wggw("init")
    lab.wggw(
        "interface",
        "add",
        ifname,
        "--listen-port",
        "51820",
        "--endpoint",
        f"{lab.gw_underlay_ip}:51820",
    )
    for name, (pool4, pool6, egress4, egress6) in TENANTS.items():
        lab.wggw(
            "tenant",
            "add",
            name,
            f"--pool={pool4}",
            f"--pool={pool6}",
            f"--egress={egress4}",
            f"--egress={egress6}",
            "--uplink",
            lab.uplink_dev,
        )
        for i in range(PEERS_PER_TENANT):
            lab.wggw("peer", "add", f"{name}/laptop{i}", "--keepalive", "25")


def snapshot(lab: Lab) -> dict[str, str]:
    """The gateway namespace as text: links, rules, routes, addresses, nft, sysctls, processes."""
    gw = lab.gw
    out = {}
    for key, argv in {
        "links": ["ip", "-d", "link", "show"],
        "rules4": ["ip", "-4", "rule", "show"],
        "rules6": ["ip", "-6", "rule", "show"],
        "routes4": ["ip", "-4", "route", "show", "table", "all"],
        "routes6": ["ip", "-6", "route", "show", "table", "all"],
        "addr": ["ip", "addr", "show"],
        "nft": ["nft", "list", "ruleset"],
        "sysctl": ["sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"],
    }.items():
        out[key] = _VOLATILE.sub(r"\1 *", gw.run(argv).stdout)
    out["processes"] = "\n".join(sorted(_cmdline(pid) for pid in gw.pids()))
    return out


# Running timers of a bridge and address lifetimes tick by themselves.
_VOLATILE = re.compile(r"\b(\w+_timer|valid_lft|preferred_lft)\s+[\d.]+(sec)?")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


# --- one trial ---------------------------------------------------------------------------


def timed(cl: CrashLab, *args: str) -> float:
    start = time.monotonic()
    cl.wggw(*args)
    return time.monotonic() - start


def kill_during(cl: CrashLab, args: Sequence[str], delay: float) -> bool:
    """Start the command, SIGKILL it `delay` s later. True if the kill landed while it ran;
    False if it had already finished (it must then have succeeded)."""
    proc = cl.spawn(*args)
    try:
        code = proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=30)
        # A command that exited just before kill() is a zombie that keeps its own code: then
        # the kill did not land, and the trial is drawn again.
        if code == -signal.SIGKILL:
            return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert code == 0, f"{args}: exit {code} before the kill"
    return False


def store_rows(cl: CrashLab) -> list[str]:
    """The store's interfaces, tenants and peers (events left out: reads record none)."""
    with contextlib.closing(sqlite3.connect(cl.db)) as db:
        return [
            repr(row)
            for table in ("interfaces", "tenants", "peers")
            for row in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
        ]


def recover(cl: CrashLab) -> tuple[float, str]:
    """The checks after a kill: the store is intact, apply converges, the re-plan is empty."""
    with contextlib.closing(sqlite3.connect(cl.db)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    start = time.monotonic()
    res = cl.wggw("apply")
    took = time.monotonic() - start
    plan = cl.wggw("plan", "--detailed-exitcode", ok=(0, 2))
    assert plan.returncode == 0, f"plan after recovery:\n{plan.stdout}"
    return took, res.stdout.strip().splitlines()[-1]


def run_trials(cl: CrashLab, kind: str, prepare, command, rng: random.Random) -> list[Trial]:
    """`prepare(n)` sets the host up for trial n, `command(n)` is the argv to kill."""
    startup = timed(cl, "--version")  # interpreter start: a kill there proves little
    prepare(0)
    measured = timed(cl, *command(0))
    trials = []
    for n in range(1, TRIALS + 1):
        scale = 1.0
        for redraws in range(MAX_REDRAWS + 1):  # noqa: B007 - read after the loop
            prepare(n)
            low = min(startup, 0.5 * measured) * scale
            delay = rng.uniform(low, 0.95 * measured * scale)
            before = store_rows(cl)
            if kill_during(cl, command(n), delay):
                break
            scale /= 2
        else:
            pytest.fail(f"{kind} trial {n}: finished before every kill ({MAX_REDRAWS + 1} draws)")
        written = store_rows(cl) != before
        took, last = recover(cl)
        trial = Trial(
            kind,
            n,
            round(delay, 3),
            round(measured, 3),
            round(startup, 3),
            redraws,
            written,
            round(took, 3),
            last,
        )
        print(
            f"crash {kind} #{n}: killed at {delay:.3f}s of {measured:.3f}s "
            f"(redraws {redraws}, store "
            f"{'written' if written else 'unchanged'}); recovering apply {took:.3f}s: {last}"
        )
        trials.append(trial)
    FIGURES.extend(trials)
    return trials


# --- the trials --------------------------------------------------------------------------


def test_kill_9_during_apply(crash_lab: CrashLab):
    """From a bare host (after `down`), apply builds everything: device, wireguard-go,
    addresses, routes, rules, nft; it is killed somewhere in there."""
    trials = run_trials(
        crash_lab,
        "apply",
        lambda n: crash_lab.wggw("down"),
        lambda n: ["apply"],
        random.Random(f"{SEED}-apply"),
    )
    assert len(trials) == TRIALS


def test_kill_9_during_rotate(crash_lab: CrashLab):
    """Every peer's key rotates (new key in the store, then converge); the keys of the last
    rotation retire in the same run (--grace 0), so every run has work."""
    crash_lab.wggw("apply")
    trials = run_trials(
        crash_lab,
        "rotate",
        lambda n: None,
        lambda n: ["rotate", "--older-than", "0", "--grace", "0"],
        random.Random(f"{SEED}-rotate"),
    )
    assert len(trials) == TRIALS


def test_kill_9_during_peer_add_apply(crash_lab: CrashLab):
    """A new peer is written to the store and put on the live interface."""
    crash_lab.wggw("apply")
    attempt = iter(range(10_000))
    trials = run_trials(
        crash_lab,
        "peer add --apply",
        lambda n: None,
        lambda n: ["peer", "add", f"acme/k{next(attempt)}", "--apply"],
        random.Random(f"{SEED}-peer"),
    )
    assert len(trials) == TRIALS


def test_down_leaves_no_trace_after_the_trials(crash_lab: CrashLab):
    crash_lab.wggw("down")
    after = snapshot(crash_lab.lab)
    for key, text in crash_lab.pristine.items():
        assert after[key] == text, f"{key} differs after down"
    _report()


def _report() -> None:
    if not FIGURES:
        return
    lines = [f"crash trials (seed {SEED}):"]
    for kind in dict.fromkeys(t.kind for t in FIGURES):
        ts = [t for t in FIGURES if t.kind == kind]
        rec = [t.recover_s for t in ts]
        lines.append(
            f"  {kind}: {len(ts)} kills landed (+{sum(t.redraws for t in ts)} redrawn; "
            f"{sum(t.store_written for t in ts)} after the store write), "
            f"measured run {ts[0].measured:.3f}s, recovering apply median "
            f"{statistics.median(rec):.3f}s max {max(rec):.3f}s; integrity ok, re-plan empty"
        )
    lines.append(f"  total: {len(FIGURES)} kills, all recovered; down left no trace")
    print("\n".join(lines))
    target = os.environ.get("WGGW_CRASH_REPORT")
    if target:
        Path(target).write_text(
            json.dumps({"seed": SEED, "trials": [asdict(t) for t in FIGURES]}, indent=1)
        )
