"""One fault trial, as an operator would live it: traffic from both tenants (v4, v6) flows, the
fault strikes (alone, or while `apply` or `peer add --apply` runs), traffic keeps trying, `plan
--detailed-exitcode` must show the drift (exit 2), `apply` must repair it, the re-plan must be
empty, and the internet host's records say whether anything left with the wrong source.

The result is a Row of figures (tried, leaked, detected, repaired, time to repair); the test
asserts on it after recording it, so a failing trial still leaves its figures in the report.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from faultcatalog import Fault, foreign_ip_rule_removed
from faultlab import CMD_TIMEOUT, STREAMS, FaultLab, LabError, Traffic

WINDOW = 1.0  # seconds of traffic while the fault stands (half before `end`, half after)
REPAIR_TIMEOUT = 30.0  # bound on waiting for every stream to be answered correctly after apply
UNSEEN_TIMEOUT = 3.0  # ... when nothing saw the drift (apply had nothing to repair)
CONCURRENT_TIMEOUT = 60.0
VARIANTS = ("alone", "during_apply", "during_peer_add")


@dataclass
class Row:
    fault: str
    variant: str
    tried: int = 0  # requests the clients sent during the whole trial
    tried_during: int = 0  # ... of which started before the repair (apply) returned
    leaked: int = 0  # requests the internet host saw from a wrong source
    leaked_after_repair: int = 0  # ... of which started after the repairing `apply` returned
    leaked_packets: int = 0  # packets from a source that is no tenant's egress
    leak_sources: list[str] = field(default_factory=list)
    landed_while_running: bool = True  # the concurrent command was running when the fault began
    running_after_fault: bool = False  # ... and still running once the fault was complete
    landed_in_converge: bool = False  # ... and still held the state lock then
    concurrent_rc: int | None = None
    concurrent_error: str = ""
    plan_rc: int = -1
    detected: bool = False
    apply_rc: int = -1
    apply_seconds: float = 0.0
    repaired: bool = False
    time_to_repair: float | None = None  # apply start -> every stream answered correctly
    replan_rc: int = -1
    check_rc: int | None = None  # foreign_ip_rule: `status --check` with the rule
    check_output: str = ""
    check_rc_after_removal: int | None = None
    foreign_rule_kept: bool | None = None  # apply left the foreign rule alone
    error: str = ""  # the trial itself could not run to its end
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _lock_held(path: Path) -> bool:
    """Is `path` flock-ed by anyone (read from /proc/locks, so the probe takes no lock)?"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    dev_ino = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as locks:
        return any(dev_ino in line.split() for line in locks)


def start_concurrent(fl: FaultLab, variant: str, rng: random.Random, peer: str):
    """Start the concurrent command and return it once it holds the state lock (it is then
    inside its converge), after a seeded extra delay; None for `alone`."""
    if variant == "alone":
        return None
    args = ("apply",) if variant == "during_apply" else ("peer", "add", f"acme/{peer}", "--apply")
    proc = fl.wggw_popen(*args)
    lock = fl.lab.state_dir / "lock"
    deadline = time.monotonic() + 15.0
    while not _lock_held(lock) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    # Measured here: apply holds the lock ~30 ms (its whole converge) and exits ~50 ms later;
    # peer add --apply holds it ~100 ms. Begin the fault inside or just after the converge.
    time.sleep(rng.uniform(0.0, 0.02 if variant == "during_apply" else 0.06))
    return proc


def _repair_lines(out: str, variant: str, ifname: str) -> list[str]:
    """The `[#]` lines a concurrent command printed beyond its own work: a repair of the fault
    (the store asked apply for nothing, and peer add for one `wg set ... peer` line)."""
    lines = [ln for ln in out.splitlines() if ln.startswith("[#]")]
    if variant == "during_peer_add":
        lines = [ln for ln in lines if not ln.startswith(f"[#] wg set {ifname} peer ")]
    return lines


def _finish(proc: subprocess.Popen, row: Row) -> str:
    try:
        out, err = proc.communicate(timeout=CONCURRENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate(timeout=10)
        err += "\n(killed: timed out)"
    row.concurrent_rc = proc.returncode
    # Failing is allowed (the fault may pull the floor from under it, and its exit code is the
    # CLI's documented business); crashing is not.
    if "Traceback" in err or "unexpected" in err or proc.returncode < 0:
        row.concurrent_error = err.strip()[-400:]
    return out


def _strike(fl: FaultLab, fault: Fault, variant: str, row: Row, traffic: Traffic) -> str:
    """Traffic flowing, then the fault (inside a concurrent command unless `alone`) for WINDOW
    seconds; returns the concurrent command's stdout."""
    if len(traffic.wait_all_correct(0.0, 15.0)) != len(STREAMS):
        raise LabError(f"{fault.name}: traffic was not flowing before the fault")
    proc = start_concurrent(fl, variant, random.Random(row.seed), peer=f"f{row.seed}")
    row.landed_while_running = proc is None or proc.poll() is None
    fault.inject(fl)
    row.running_after_fault = proc is not None and proc.poll() is None
    row.landed_in_converge = proc is not None and _lock_held(fl.lab.state_dir / "lock")
    time.sleep(WINDOW / 2)
    fault.end(fl)
    time.sleep(WINDOW / 2)
    return _finish(proc, row) if proc else ""


def run(fl: FaultLab, fault: Fault, variant: str, seed: int) -> Row:
    """The whole trial; a harness error ends it with `row.error` set (the row is still
    reported). Leaves the lab converged unless the repair itself failed."""
    row = Row(fault.name, variant, seed=seed)
    body = _run_foreign_rule if fault.name == "foreign_ip_rule" else _run
    try:
        body(fl, fault, variant, row)
    except (LabError, OSError, subprocess.SubprocessError) as exc:
        row.error = f"{type(exc).__name__}: {exc}"[:600]
    return row


def _run(fl: FaultLab, fault: Fault, variant: str, row: Row) -> None:
    fl.capture.reset()
    traffic = Traffic(fl.lab).start()
    try:
        concurrent_out = _strike(fl, fault, variant, row, traffic)
        row.plan_rc, _ = fl.plan_rc()
        # A concurrent command that observed after the fault may have repaired it already (peer
        # add --apply runs a full converge when the device is gone): its extra `[#]` lines are
        # then the detection.
        row.detected = row.plan_rc == 2 or bool(_repair_lines(concurrent_out, variant, fl.ifname))
        t_apply = time.monotonic()
        res = fl.wggw("apply", check=False, timeout=2 * CMD_TIMEOUT)
        t_applied = time.monotonic()
        row.apply_rc, row.apply_seconds = res.returncode, round(t_applied - t_apply, 2)
        seen = traffic.wait_all_correct(t_apply, REPAIR_TIMEOUT if row.detected else UNSEEN_TIMEOUT)
        if len(seen) == len(STREAMS):
            row.time_to_repair = round(max(seen.values()) - t_apply, 2)
        row.replan_rc, _ = fl.plan_rc()
        row.repaired = row.apply_rc == 0 and row.time_to_repair is not None
    finally:
        traffic.stop()
    _count(fl, traffic, row, t_apply, t_applied)


def _run_foreign_rule(fl: FaultLab, fault: Fault, variant: str, row: Row) -> None:
    """`ip rule add pref 100 lookup main` (v4 and v6), which wggw does not own: `status --check`
    must report it (non-zero, naming the rule), `apply` must leave it alone, and once the
    operator removes it `status --check` must pass again."""
    fl.capture.reset()
    traffic = Traffic(fl.lab).start()
    try:
        _strike(fl, fault, variant, row, traffic)
        res = fl.wggw("status", "--check", check=False, timeout=CMD_TIMEOUT)
        row.check_rc, row.check_output = res.returncode, (res.stdout + res.stderr).strip()[-600:]
        row.detected = res.returncode not in (0,) and names_foreign_rule(row.check_output)
        t_apply = time.monotonic()
        row.apply_rc = fl.wggw("apply", check=False, timeout=2 * CMD_TIMEOUT).returncode
        t_applied = time.monotonic()
        row.apply_seconds = round(t_applied - t_apply, 2)
        row.foreign_rule_kept = "lookup main" in fl.lab.gw.ip("rule", "show", "pref", "100").stdout
        foreign_ip_rule_removed(fl)  # the operator's repair, not wggw's
        after = fl.wggw("status", "--check", check=False, timeout=CMD_TIMEOUT)
        row.check_rc_after_removal = after.returncode
        row.repaired = after.returncode == 0
        row.replan_rc, _ = fl.plan_rc()
    finally:
        traffic.stop()
        foreign_ip_rule_removed(fl)
    _count(fl, traffic, row, t_apply, t_applied)


def names_foreign_rule(text: str) -> bool:
    """Does a report name the rule `pref 100 lookup main` (its priority and its table)?"""
    return bool(re.search(r"(?<![\d.:])100(?![\d.]|::)", text)) and "main" in text


def _count(fl: FaultLab, traffic: Traffic, row: Row, t_apply: float, t_applied: float) -> None:
    starts = {(t, r["v"], r["seq"]): r["t0"] for t, r in traffic.records()}
    row.tried = len(starts)
    row.tried_during = sum(1 for t0 in starts.values() if t0 < t_applied)
    seen = fl.capture.read()
    leaked = seen.leaked_requests()
    row.leaked = len(leaked)
    row.leaked_after_repair = sum(
        1 for src, t, v, seq in leaked if starts.get((t, v, seq), 0.0) >= t_applied
    )
    bad_packets = seen.leaked_packets()
    row.leaked_packets = sum(bad_packets.values())
    row.leak_sources = sorted(set(bad_packets) | {src for src, *_ in leaked})
