"""`wggw agent` in a real lab: a real process in the gateway's namespace, real wireguard-go,
real nft, real packets. For each fault kind the test inflicts it, and measures the time until
the plan is empty again and both tenants' traffic leaves with the right source; then the one-
peer change through the agent, the back-off against a tool that keeps deleting a rule (never
a wrong source), kill -9 (the data plane keeps forwarding), a second agent (refused), and
`down` while the agent runs (refused; `--stop-agent` stops it first).

Figures are printed (`pytest -s`) and asserted against a generous bound: the host has two
cores shared with other test runs."""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import METRICS_PORT, AgentProc

from wggw.backends import runfiles
from wggw.lab.topology import INET_URL_V4, INET_URL_V6

TRIALS = int(os.environ.get("WGGW_AGENT_TRIALS", "5"))  # 20+ for the figures in the report
# Emulated machines (the kernel tier's VM under TCG) run 5-20x slower: they scale the bounds.
SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
BOUND = 3.0 * SCALE  # p99 bound asserted (the goal is 1 s; see the printed figures)
EGRESS = {
    "acme": ("203.0.113.10", "2001:db8:ffff::10"),
    "globex": ("203.0.113.20", "2001:db8:ffff::20"),
}
FIGURES: dict[str, list[float]] = {}


class Probe:
    """tests/agent/probe.py in the gateway namespace (one process for every trial)."""

    def __init__(self, lab) -> None:
        probe = Path(__file__).with_name("probe.py")
        argv = ["ip", "netns", "exec", lab.gw.name, sys.executable, str(probe), str(lab.state_dir)]
        self.proc = subprocess.Popen(
            argv, env=lab._py_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def wait_empty(self, bound: float) -> float:
        self.proc.stdin.write(f"wait {bound}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().split(" ", 1)
        assert answer[0] == "empty", f"plan not empty after {bound}s: {answer}"
        return float(answer[1])

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def curl(lab, tenant: str, v: int, timeout: float = 1.0) -> str | None:
    """The source the internet host saw for one request, or None (no answer)."""
    url = INET_URL_V4 if v == 4 else INET_URL_V6
    res = lab.client(tenant).run(
        ["curl", "-sf", "-m", str(timeout), url], check=False, timeout=timeout + 5
    )
    return res.stdout.strip() if res.returncode == 0 else None


def traffic_ok_at(lab, bound: float, families=(4, 6)) -> float:
    """Poll both tenants until each answers with its own egress; returns that moment."""
    deadline = time.monotonic() + bound
    todo = {(t, v) for t in EGRESS for v in families}
    while todo and time.monotonic() < deadline:
        for tenant, v in sorted(todo):
            seen = curl(lab, tenant, v, timeout=0.5)
            assert seen in (None, EGRESS[tenant][v == 6]), f"{tenant} left as {seen}"
            if seen is not None:
                todo.discard((tenant, v))
    assert not todo, f"no traffic after {bound}s from {sorted(todo)}"
    return time.monotonic()


def _owned_rule(lab) -> str:
    for line in lab.gw.ip("-4", "rule", "show").stdout.splitlines():
        pref, _, rest = line.partition(":")
        if 10000 <= int(pref) <= 31999 and "lookup 600" in rest:
            return pref
    raise AssertionError("no wggw rule found")


def _egress_addr(lab) -> str:
    text = lab.gw.ip("-4", "-o", "addr", "show", "dev", "uplink0").stdout
    return re.search(r"inet (203\.0\.113\.10/\d+)", text).group(1)


def _wg_pid(gw) -> str:
    return runfiles.pid_file(gw.ifname).read_text().split()[0]


def _snat(lab) -> str:
    return lab.gw.run(["nft", "list", "map", "inet", "wggw", "snat_v4"]).stdout


FAULTS = {
    "nft table flushed": lambda lab, gw: lab.gw.run(["nft", "flush", "table", "inet", "wggw"]),
    "nft table deleted": lambda lab, gw: lab.gw.run(["nft", "delete", "table", "inet", "wggw"]),
    "ip rule deleted": lambda lab, gw: lab.gw.ip("-4", "rule", "del", "pref", _owned_rule(lab)),
    "egress address removed": lambda lab, gw: lab.gw.ip(
        "addr", "del", _egress_addr(lab), "dev", "uplink0"
    ),
    "nft element edited": lambda lab, gw: lab.gw.run(
        ["nft", "-f", "-"],
        input="delete element inet wggw snat_v4 { 10.10.0.0/24 }\n"
        "add element inet wggw snat_v4 { 10.10.0.0/24 : 203.0.113.99 }\n",
    ),
    "uplink flap": lambda lab, gw: (
        lab.gw.ip("link", "set", "uplink0", "down"),
        lab.gw.ip("link", "set", "uplink0", "up"),
    ),
    "wireguard-go killed": lambda lab, gw: lab.gw.run(["kill", "-9", _wg_pid(gw)]),
}
# Faults that a plan of digests and counts cannot see: what "repaired" means for them.
EXTRA_CHECK = {"nft element edited": lambda lab: "10.10.0.0/24 : 203.0.113.10" in _snat(lab)}


@pytest.fixture(scope="module")
def probe(agent_lab):
    lab, _, _ = agent_lab
    p = Probe(lab)
    yield p
    p.close()


KERNEL_TIER = {"nft table flushed", "uplink flap"}  # also on the kernel module (scripts/vm-test)


@pytest.mark.parametrize(
    "fault",
    [pytest.param(f, marks=[pytest.mark.kernel_tier] if f in KERNEL_TIER else []) for f in FAULTS],
)
def test_fault_is_repaired_fast(agent_lab, probe, fault: str) -> None:
    lab, gw, agents = agent_lab
    agent = agents[-1]
    times, traffic = [], []
    for trial in range(TRIALS):
        before = agent.log().count("converged trigger=drift")
        t0 = time.monotonic()
        FAULTS[fault](lab, gw)
        t_fault = time.monotonic()  # the fault is in place (the command returned)
        done = probe.wait_empty(10.0)
        check = EXTRA_CHECK.get(fault)
        if check is not None:
            deadline = t_fault + 10.0
            while not check(lab) and time.monotonic() < deadline:
                time.sleep(0.005)
            assert check(lab), f"{fault}: not repaired"
            done = max(done, time.monotonic())
        agent.wait_log("converged trigger=drift", 10.0, before + 1)
        times.append(max(0.0, done - t_fault))
        # wireguard-go killed: clients hold a session the new process does not know; WireGuard
        # itself re-handshakes after its timeouts (~15 s + jitter); wggw cannot speed that up,
        # so traffic is waited for after the last trial only (unless WGGW_AGENT_TRIALS is set).
        slow = fault == "wireguard-go killed"
        if not slow or trial == TRIALS - 1 or "WGGW_AGENT_TRIALS" in os.environ:
            traffic.append(traffic_ok_at(lab, 40.0 if slow else 10.0) - t0)
    FIGURES[fault] = times
    p50, p99 = statistics.median(times), max(times)
    print(
        f"\n[agent] {fault}: repaired p50 {p50 * 1000:.0f} ms, max {p99 * 1000:.0f} ms over "
        f"{TRIALS}; traffic right again p50 {statistics.median(traffic) * 1000:.0f} ms, "
        f"max {max(traffic) * 1000:.0f} ms"
    )
    assert p99 < BOUND, f"{fault}: repair took {times}"
    # own events do not loop: no reconcile while nothing happens
    settled = agent.log().count("converged trigger=")
    time.sleep(1.0)
    assert agent.log().count("converged trigger=") == settled, agent.log()[-2000:]


@pytest.mark.kernel_tier
def test_peer_add_apply_through_the_agent(agent_lab) -> None:
    lab, gw, agents = agent_lab
    agent = agents[-1]
    wall, part = [], []
    for i in range(5):
        t0 = time.monotonic()
        out = lab.wggw("peer", "add", f"acme/agentp{i}", "--apply").stdout
        wall.append(time.monotonic() - t0)
        assert "1 change(s) applied by the wggw agent." in out
        assert f"[#] wg set {gw.ifname} peer " in out
        text = agent.wait_log(f"peer=agentp{i} ", 5.0)
        part.append(float(re.search(rf"peer=agentp{i} changes=1 ms=([\d.]+)", text).group(1)))
    lab.wggw("plan", "--detailed-exitcode")  # nothing left for `apply`
    out = lab.wggw("peer", "remove", "acme/agentp0", "--apply").stdout
    assert "1 change(s) applied by the wggw agent." in out
    lab.wggw("plan", "--detailed-exitcode")
    for i in range(1, 5):
        lab.wggw("peer", "remove", f"acme/agentp{i}", "--apply")
    print(
        f"\n[agent] peer add --apply: whole command p50 {statistics.median(wall) * 1000:.0f} ms; "
        f"the agent's part p50 {statistics.median(part):.1f} ms, max {max(part):.1f} ms"
    )
    assert max(part) < 500


def test_store_change_without_apply_is_picked_up(agent_lab, probe) -> None:
    """A command that does not tell the agent (no --apply): the store poll finds it."""
    lab, gw, agents = agent_lab
    lab.wggw("peer", "add", "globex/polled")
    t0 = time.monotonic()
    try:
        done = probe.wait_empty(5.0)
        gen = _counter(agents[-1].metrics(), "wggw_store_generation_applied")
        assert agents[-1].wait_log("converged trigger=store", 5.0)
        print(
            f"\n[agent] peer add without --apply: applied by the agent after "
            f"{(done - t0) * 1000:.0f} ms (store poll every 0.5 s)"
        )
        assert done - t0 < 3.0 * SCALE and gen >= 1
    finally:
        lab.wggw("peer", "remove", "globex/polled", "--apply")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_idle_agent_is_cheap(agent_lab) -> None:
    """Idle (store poll, resync timer) with one scrape: a small share of one core."""
    lab, _, agents = agent_lab
    pid = agents[-1].proc.pid
    before, t0 = _cpu_seconds(pid), time.monotonic()
    agents[-1].metrics()
    time.sleep(5.0)
    share = (_cpu_seconds(pid) - before) / (time.monotonic() - t0)
    print(f"\n[agent] idle CPU with one scrape: {share * 100:.1f}% of a core")
    assert share < 0.10


def test_metrics_scrape_passes_promtool(agent_lab) -> None:
    import shutil

    lab, _, agents = agent_lab
    text = agents[-1].metrics()
    for name in (
        "wggw_reconcile_duration_seconds_bucket",
        "wggw_last_converge_timestamp_seconds",
        "wggw_store_generation_applied",
        "wggw_build_info",
        "wggw_tenant_peers",
        'wggw_wireguard_go_resident_memory_bytes{interface="',
        "wggw_peer_receive_bytes_total",
        "wggw_tenant_transmit_bytes_total",
    ):
        assert name in text, name
    if shutil.which("promtool") is None:
        pytest.fail("promtool missing: scripts/install-deps installs Debian's prometheus package")
    res = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_contested_rule_backs_off_and_fails_closed(agent_lab) -> None:
    lab, gw, agents = agent_lab
    agents[-1].stop()
    # default back-off
    agents.append(AgentProc(lab, "--metrics-listen", f"127.0.0.1:{METRICS_PORT}"))
    agent = agents[-1]
    pref = _owned_rule(lab)
    stop = threading.Event()
    deletions, attempts = [0], [0]

    def vandal() -> None:  # another tool that keeps deleting wggw's rule
        argv = ["ip", "-n", lab.gw.name, "-4", "rule", "del", "pref", pref]
        while not stop.is_set():
            res = subprocess.run(argv, capture_output=True, timeout=10, check=False)
            attempts[0] += 1
            deletions[0] += res.returncode == 0
            stop.wait(0.1)

    before = _counter(agent.metrics(), 'wggw_repairs_total{kind="rule"}')
    thread = threading.Thread(target=vandal, daemon=True)
    thread.start()
    wrong, contested = [], 0.0
    t_end = time.monotonic() + 12.0
    try:
        while time.monotonic() < t_end:
            for tenant in EGRESS:
                seen = curl(lab, tenant, 4, timeout=0.3)
                if seen not in (None, EGRESS[tenant][0]):
                    wrong.append((tenant, seen))
            gauge = _counter(agent.metrics(), 'wggw_contested_objects{kind="rule"}')
            contested = max(contested, gauge)
    finally:
        stop.set()
        thread.join(5)
    repairs = _counter(agent.metrics(), 'wggw_repairs_total{kind="rule"}') - before
    print(
        f"\n[agent] contested: {attempts[0]} attempts, {deletions[0]} deletions in 12 s, "
        f"{repairs:.0f} repairs, "
        f"contested gauge max {contested:.0f}"
    )
    assert not wrong, f"traffic left with a wrong source: {wrong[:3]}"
    # Without a back-off every attempt would find a repaired rule to delete (~100 repairs).
    assert attempts[0] >= 50 and contested >= 1, agent.log()[-3000:]
    assert repairs <= 16, f"{repairs} repairs: not bounded"
    assert "contested kind=rule" in agent.log()
    probe_deadline = time.monotonic() + 70  # the back-off ends; the rule comes back
    while (
        time.monotonic() < probe_deadline
        and lab.wggw("plan", "--detailed-exitcode", ok_codes=(0, 2)).returncode
    ):
        time.sleep(0.5)
    lab.wggw("plan", "--detailed-exitcode")


def _counter(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    return 0.0


@pytest.mark.kernel_tier
def test_kill_9_leaves_forwarding_and_second_agent_is_refused(agent_lab) -> None:
    lab, gw, agents = agent_lab
    argv = lab.wggw_argv("agent")
    second = subprocess.run(argv, env=lab._py_env(), capture_output=True, text=True, timeout=30)
    assert second.returncode == 75, second
    assert second.stderr.strip().startswith("wggw: error: another wggw agent is running (pid ")
    assert agents[-1].stop(signal.SIGKILL) == -9
    lab.wggw("plan", "--detailed-exitcode")  # the data plane is as it was
    traffic_ok_at(lab, 10.0)
    # the dead agent's lock and socket files are still there: a new one starts all the same,
    # and speaks systemd's notify protocol (READY once converged, then WATCHDOG)
    notify_path = lab.workdir / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(10)
        env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "1000000"}
        agents.append(AgentProc(lab, "--metrics-listen", f"127.0.0.1:{METRICS_PORT}", env=env))
        got = [notify.recv(4096).decode() for _ in range(3)]
    assert "READY=1" in got and "WATCHDOG=1" in got, got
    assert agents[-1].stop(signal.SIGTERM) == 0
    assert "stop note=" in agents[-1].log()
    lab.wggw("plan", "--detailed-exitcode")  # a clean stop removes nothing either
    traffic_ok_at(lab, 10.0)
    assert not (runfiles.runtime_dir() / "agent.sock").exists()


def test_down_refuses_while_an_agent_runs_and_stop_agent_stops_it(agent_lab) -> None:
    """`wggw down` with an agent running: exit 75 with one line, nothing removed, the agent
    left alone (it would rebuild at once what down removes). `down --stop-agent` asks the agent
    to stop over its control socket, waits for it to exit cleanly, then removes the data plane,
    and nothing rebuilds it."""
    lab, _, agents = agent_lab
    if agents[-1].proc.poll() is not None:
        agents.append(AgentProc(lab, "--metrics-listen", f"127.0.0.1:{METRICS_PORT}"))
    agent = agents[-1]
    refused = lab.wggw("down", ok_codes=(75,))
    assert refused.stdout == ""
    assert refused.stderr.strip() == (
        f"wggw: error: a wggw agent is running (pid {agent.proc.pid}) and would rebuild what "
        "down removes: stop it first (systemctl stop wggw-agent) or pass --stop-agent"
    )
    assert agent.proc.poll() is None
    lab.wggw("plan", "--detailed-exitcode")  # nothing was removed
    traffic_ok_at(lab, 10.0)
    assert "stopping" not in agent.log()

    out = lab.wggw("down", "--stop-agent").stdout
    assert out.startswith(
        f"[#] stop the wggw agent (pid {agent.proc.pid}): it leaves the data plane as it is\n"
    ), out
    assert "object(s) removed." in out
    assert agent.proc.wait(10) == 0  # a clean exit: systemd's Restart=on-failure leaves it be
    log = agent.log()
    assert "stopping reason=" in log and "stop note=" in log, log[-2000:]
    assert not (runfiles.runtime_dir() / "agent.lock").exists()
    assert not (runfiles.runtime_dir() / "agent.sock").exists()
    time.sleep(1.0 * SCALE)  # an agent left running would have rebuilt the gateway by now
    plan = lab.wggw("plan", "--detailed-exitcode", ok_codes=(2,)).stdout
    assert "nft -f" in plan, plan
    assert curl(lab, "acme", 4, timeout=2) is None  # the gateway is down
    assert lab.wggw("down").stdout.strip() == "Nothing of wggw's is on this host."
