"""High availability on one gateway, with a real keepalived, agent, wireguard-go, nft and
packets (issue 14; the two-gateway failover cycles build on this in the ha-test suite).

One lab gateway runs the agent as gateway gw1 of an interface placed on (gw1, gw2), and a
throwaway keepalived (its own pid files, started and stopped by PID) on the configuration the
agent rendered. Checked, in order: keepalived holds the endpoint and egress addresses and wggw
neither fights it nor needs them for its routes; the configuration is rewritten and keepalived
reloaded only when its text changes; a frozen agent makes keepalived give the addresses up and
a thawed one takes them back; as a standby (no addresses) the gateway still lets tenant
traffic out only with the tenant's egress; on takeover the agent starts a handshake with a
client that never sent anything, from the floating endpoint address.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "netns"))  # gwhelper

from wggwtest import require_netns  # noqa: E402

from wggw.backends import runfiles  # noqa: E402
from wggw.core.fleet import GatewayReport, PeerReport  # noqa: E402
from wggw.lab.netns import wait_until  # noqa: E402
from wggw.lab.topology import INET_URL_V4, INET_URL_V6, Lab, new_ifname  # noqa: E402
from wggw.store.select import open_store  # noqa: E402

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
ENDPOINT = "198.51.100.10"  # on the clients' segment (the lab's underlay bridge)
EGRESS = ("203.0.113.10", "2001:db8:ffff::10")
EGRESS2 = "203.0.113.20"
KEEPALIVED = "/usr/sbin/keepalived"
GW1 = {"WGGW_GATEWAY": "gw1"}
METRICS_PORT = (
    9586  # inside the lab's gateway namespace  # on a gateway host, wggw acts for that gateway
)


@pytest.fixture(scope="module")
def require_root() -> None:
    require_netns("the HA netns tests", ("ip", "wg", "wireguard-go", "nft", "keepalived"))


class Proc:
    """A process in the gateway namespace with its output in a file; stopped by PID."""

    def __init__(self, lab: Lab, argv: list[str], name: str, env: dict | None = None) -> None:
        assert lab.workdir is not None
        self.log_path = lab.workdir / f"{name}-{time.monotonic_ns()}.log"
        with open(self.log_path, "w") as log:
            # `ip netns exec` execs in place: this PID is the process's own.
            self.proc = subprocess.Popen(
                argv, env=lab._py_env(env), stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float, count: int = 1) -> None:
        wait_until(
            lambda: self.log().count(needle) >= count or self._died(),
            timeout=timeout * SCALE,
            what=f"{needle!r} x{count} in {self.log_path.name}",
        )
        assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.log()}"

    def _died(self) -> bool:
        return self.proc.poll() is not None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class HaLab:
    lab: Lab
    ifname: str
    agent: Proc
    keepalived: Proc | None = None

    @property
    def run_dir(self) -> Path:
        return runfiles.runtime_dir()

    def start_keepalived(self) -> Proc:
        assert self.keepalived is None or self.keepalived.proc.poll() is not None
        run = self.run_dir
        argv = ["ip", "netns", "exec", self.lab.gw.name, KEEPALIVED, "--dont-fork", "--vrrp"]
        argv += ["--log-console", "--log-detail", "--no-syslog", "-f", str(run / "keepalived.conf")]
        argv += ["-p", str(run / "keepalived.pid"), "-r", str(run / "keepalived-vrrp.pid")]
        self.keepalived = Proc(self.lab, argv, "keepalived")
        return self.keepalived

    def addresses(self) -> str:
        return self.lab.gw.ip("addr", "show").stdout

    def holds(self, *addrs: str) -> bool:
        text = self.addresses()
        return all(f" {a}/" in text for a in addrs)

    def holds_none(self, *addrs: str) -> bool:
        text = self.addresses()
        return not any(f" {a}/" in text for a in addrs)


def _setup_store(lab: Lab, ifname: str) -> None:
    lab.wggw("init")
    lab.wggw(
        "interface", "add", ifname, "--listen-port", "51820", "--endpoint", f"{ENDPOINT}:51820"
    )
    pools = ("--pool=10.10.0.0/24", "--pool=fd00:a::/64")
    egress = tuple(f"--egress={e}" for e in EGRESS)
    lab.wggw("tenant", "add", "acme", *pools, *egress, "--uplink", lab.uplink_dev)
    for peer in ("laptop", "quiet"):
        lab.wggw("peer", "add", f"acme/{peer}")
    # The interface on two gateways, gw1 first.
    for gw in ("gw1", "gw2"):
        lab.wggw("gateway", "add", gw)
    lab.wggw("interface", "set", ifname, "--gateway", "gw1", "--gateway", "gw2")


@pytest.fixture(scope="module")
def ha(require_root: None) -> Iterator[HaLab]:
    runtime = runfiles.runtime_dir()
    before = set(runtime.glob("*")) if runtime.is_dir() else set()
    with Lab(("acme", "quiet")) as lab:
        ifname = new_ifname("wgh")
        lab.own_ifname(ifname)
        procs: list[Proc] = []
        hl: HaLab | None = None
        try:
            _setup_store(lab, ifname)
            argv = lab.wggw_argv("agent", "--metrics-listen", f"127.0.0.1:{METRICS_PORT}")
            agent = Proc(lab, argv, "agent", GW1)
            procs.append(agent)
            agent.wait_log("converged trigger=start", 30)
            hl = HaLab(lab, ifname, agent)
            yield hl
        finally:
            if hl is not None and hl.keepalived is not None:
                hl.keepalived.stop()
            for p in procs:
                p.stop(signal.SIGKILL)
            for name in ("agent.lock", "agent.sock", "keepalived.conf", "keepalived.pid"):
                (runtime / name).unlink(missing_ok=True)
            (runtime / "keepalived-vrrp.pid").unlink(missing_ok=True)
            lab.wggw("down", check=False)
    left = (set(runtime.glob("*")) if runtime.is_dir() else set()) - before
    assert not left, f"left in {runtime}: {sorted(p.name for p in left)}"


def test_keepalived_holds_the_addresses_and_wggw_does_not_fight_it(ha: HaLab) -> None:
    conf = ha.run_dir / "keepalived.conf"
    wait_until(conf.exists, timeout=10 * SCALE, what="keepalived.conf from the agent")
    text = conf.read_text()
    assert f"{ENDPOINT}/32 dev underlay0" in text  # the clients' side
    assert f"{EGRESS[0]}/32 dev uplink0" in text and f"{EGRESS[1]}/128 dev uplink0" in text
    assert "priority 200" in text and "state MASTER" in text
    assert ha.holds_none(ENDPOINT, *EGRESS)  # wggw added none of them itself
    for fam in ("-4", "-6"):  # the tenant's default routes carry no `src` to lose
        routes = ha.lab.gw.ip(fam, "route", "show", "table", "60000", "default").stdout
        assert "default via" in routes and " src " not in routes, routes

    before = len(ha.agent.log())
    ha.start_keepalived()
    wait_until(lambda: ha.holds(ENDPOINT, *EGRESS), timeout=10 * SCALE, what="the VIPs")
    ha.agent.wait_log(f"vrrp interface={ha.ifname} state=MASTER", 10)
    applied = ha.lab.wggw("apply", env=GW1).stdout
    assert "Nothing to do" in applied, applied
    time.sleep(1.0)  # a round the address events might have caused
    assert ha.holds(ENDPOINT, *EGRESS)
    after = ha.agent.log()[before:]
    assert "change=" not in after  # the agent changed nothing for them
    assert "event kind=address" not in after  # nor took keepalived's moves for drift

    ha.lab.client("acme").up_wireguard(ha.lab.wggw("peer", "config", "acme/laptop").stdout)
    client = ha.lab.client("acme")
    for url, source in ((INET_URL_V4, EGRESS[0]), (INET_URL_V6, EGRESS[1])):
        seen = client.fetch_retry(url, attempts=8, delay=0.5, timeout=2.0)
        assert seen.strip() == source
    # A tenant's own packet from the WireGuard port leaves with its egress, not the endpoint's
    # address (the endpoint's source rule touches the host's own packets only).
    _capture_table(ha)
    echo = client.run([sys.executable, "-c", UDP_FROM_51820], timeout=15).stdout
    assert "echoed" in echo, echo
    right, pool, other = _counts(ha)
    assert right > 0 and pool == 0 and other == 0, (right, pool, other)


def test_config_is_rewritten_and_keepalived_reloaded_only_when_it_changes(ha: HaLab) -> None:
    assert ha.keepalived is not None
    written = ha.agent.log().count("keepalived config=")
    rounds = ha.agent.log().count("converged trigger=store")
    ha.lab.wggw("peer", "add", "acme/phone")  # a store change that changes no VRRP address
    ha.agent.wait_log("converged trigger=store", 10, rounds + 1)
    time.sleep(0.5)
    assert ha.agent.log().count("keepalived config=") == written
    assert "Reloading" not in ha.keepalived.log()

    ha.lab.wggw(
        "tenant", "add", "globex", "--pool=10.20.0.0/24", f"--egress={EGRESS2}", "--uplink",
        ha.lab.uplink_dev,
    )  # fmt: skip
    ha.agent.wait_log("keepalived config=", 10, written + 1)
    ha.keepalived.wait_log("Reloading", 10)
    wait_until(lambda: ha.holds(EGRESS2), timeout=10 * SCALE, what=f"{EGRESS2} after reload")
    assert ha.holds(ENDPOINT, *EGRESS)  # the reload kept the others where they were


def test_a_frozen_agent_gives_the_addresses_up(ha: HaLab) -> None:
    ha.agent.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(
            lambda: ha.holds_none(ENDPOINT, *EGRESS, EGRESS2),
            timeout=15 * SCALE,
            what="keepalived to give the addresses up while the agent is frozen",
        )
    finally:
        ha.agent.proc.send_signal(signal.SIGCONT)
        resumed = time.time()
    wait_until(
        lambda: ha.holds(ENDPOINT, *EGRESS, EGRESS2),
        timeout=15 * SCALE,
        what="the addresses back once the agent answers again",
    )
    # ... and the takeover's kick gives the client (it has a tunnel by now) a new session
    wait_until(
        lambda: _handshake_since(ha, resumed - 1),
        timeout=10 * SCALE,
        what="a handshake with the client after the takeover",
    )


def _handshake_since(ha: HaLab, since: float) -> bool:
    out = ha.lab.gw.run(["wg", "show", ha.ifname, "latest-handshakes"]).stdout
    stamps = (line.split() for line in out.splitlines())
    return any(int(f[1]) >= since for f in stamps if len(f) == 2)


UDP_FROM_51820 = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 51820))
s.settimeout(1.0)
for _ in range(5):
    s.sendto(b"ha", ("203.0.113.254", 7))
    try:
        s.recvfrom(64)
    except OSError:
        continue
    print("echoed")
    break
"""


def _capture_table(ha: HaLab) -> None:
    rules = (
        "table inet hacap {}\ndelete table inet hacap\n"
        "table inet hacap {\n chain pre {\n  type filter hook prerouting priority -300;\n"
        f"  ip saddr {EGRESS[0]} counter\n  ip saddr 10.0.0.0/8 counter\n"
        "  ip saddr != { 203.0.113.0/24, 10.0.0.0/8 } counter\n }\n}\n"
    )
    ha.lab.inet.run(["nft", "-f", "-"], input=rules)


def _counts(ha: HaLab) -> list[int]:
    text = ha.lab.inet.run(["nft", "list", "chain", "inet", "hacap", "pre"]).stdout
    return [
        int(line.split("packets ")[1].split()[0]) for line in text.splitlines() if "packets" in line
    ]


def test_a_standby_forwards_only_with_the_tenant_egress(ha: HaLab) -> None:
    assert ha.keepalived is not None
    ha.keepalived.stop()  # keepalived removes its addresses on the way out: now a standby
    wait_until(
        lambda: ha.holds_none(ENDPOINT, *EGRESS), timeout=10 * SCALE, what="addresses released"
    )
    assert "Nothing to do" in ha.lab.wggw("apply", env=GW1).stdout  # nor does wggw want them back
    _capture_table(ha)
    client = ha.lab.client("acme")
    # Nothing reaches a standby's tunnel normally (the endpoint address is elsewhere); a
    # client that still has this gateway's own address (split brain, a stale neighbour entry)
    # does: send the established session there.
    wg, gw_key = client.wg_ifname, ha.lab.wggw("interface", "show", ha.ifname, "--json").stdout
    assert wg is not None
    key = json.loads(gw_key)["public_key"]
    client.run(["wg", "set", wg, "peer", key, "endpoint", f"{ha.lab.gw_underlay_ip}:51820"])
    for _ in range(3):  # no answer can come back (nobody holds the egress): count what left
        try:
            client.fetch(INET_URL_V4, timeout=0.5)
        except Exception:  # noqa: BLE001 - expected: the reply has nowhere to go
            pass
    right, pool, other = _counts(ha)
    assert right > 0 and pool == 0 and other == 0, (right, pool, other)


def test_takeover_starts_a_handshake_with_a_silent_client(ha: HaLab) -> None:
    lab = ha.lab
    quiet = lab.client("quiet")
    quiet.up_wireguard(lab.wggw("peer", "config", "acme/quiet").stdout)
    wg = quiet.wg_ifname
    assert wg is not None
    port = quiet.run(["wg", "show", wg, "listen-port"]).stdout.strip()
    assert quiet.run(["wg", "show", wg, "latest-handshakes"]).stdout.split()[1] == "0"
    # What gw2's agent reported while it was active: where this peer was last seen.
    with open_store(lab.state_dir) as store:
        peer = store.load().peers_of("acme")
        key = next(p.public_key for p in peer if p.name == "quiet")
        now = time.time()
        report = GatewayReport("gw2", 0, True, None, "test", "gw2", 1, now, now)
        store.write_report(report, [PeerReport("gw2", key, f"198.51.100.12:{port}", now - 5)])
    started = time.monotonic()
    ha.start_keepalived()  # becomes MASTER: notify -> agent -> kick
    wait_until(
        lambda: quiet.run(["wg", "show", wg, "latest-handshakes"]).stdout.split()[1] != "0",
        timeout=10 * SCALE,
        what="a handshake the gateway started with the silent client",
    )
    took = time.monotonic() - started
    assert took < 5 * SCALE, took  # not the client's own ~15 s retry: it never sent anything
    ha.agent.wait_log("kicked=1", 5)
    # It came from the floating endpoint: the client still dials the address that moves.
    endpoints = quiet.run(["wg", "show", wg, "endpoints"]).stdout.split()[1]
    assert endpoints == f"{ENDPOINT}:51820"
    assert quiet.fetch(INET_URL_V4, timeout=2.0).strip() == EGRESS[0]  # first try answers
    url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
    metrics = lab.gw.run(["curl", "-sf", url]).stdout
    assert f'wggw_ha_master{{interface="{ha.ifname}"}} 1.0' in metrics
    kicked = [
        line for line in metrics.splitlines() if line.startswith("wggw_ha_kicked_peers_total")
    ]
    assert kicked and float(kicked[0].split()[-1]) >= 1, kicked
