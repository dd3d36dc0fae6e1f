"""The data plane with real packets: wggw in a gateway namespace, real wireguard-go, real
nftables, real policy routing. Each tenant's client reaches the internet host, which
sees that tenant's egress address (v4 and v6); tenants cannot reach each other; routing
and NAT fail closed; apply is idempotent and keeps live sessions; down leaves no trace."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from gwhelper import TENANTS, Gateway, snapshot, up

from wggw.lab.topology import FetchError, new_ifname

INET_NFT = """table inet wggwtest_count {
  chain input { type filter hook input priority 0; policy accept;
    tcp dport 80 ip saddr != { 203.0.113.10, 203.0.113.20 } counter
    tcp dport 80 ip6 saddr != { 2001:db8:ffff::10, 2001:db8:ffff::20 } counter
  }
}
"""


def foreign_packets(lab) -> int:
    """Packets that reached the internet host's HTTP port from a non-egress source."""
    text = lab.inet.run(["nft", "list", "table", "inet", "wggwtest_count"]).stdout
    return sum(int(part.split()[0]) for part in text.split("packets ")[1:])


def assert_blocked(gw: Gateway, tenant: str) -> None:
    for v in (4, 6):
        with pytest.raises(FetchError):
            gw.seen(tenant, v, retry=False)


@pytest.mark.kernel_tier
def test_each_tenant_leaves_through_its_own_egress_and_tenants_are_isolated(lab):
    gw = up(lab)
    for tenant, t in TENANTS.items():
        assert gw.seen(tenant, 4) == t["egress"][0]
        assert gw.seen(tenant, 6) == t["egress"][1]
    acme, globex = lab.client("acme"), lab.client("globex")
    assert acme.can_reach("10.10.0.1")  # the gateway's own address in acme's pool
    for src, dst in ((acme, globex), (globex, acme)):
        for addr in dst.tunnel_addresses:
            assert not src.can_reach(addr), f"{src.name} reached {addr}"


@pytest.mark.kernel_tier
def test_flushed_tenant_table_fails_closed_and_apply_repairs(lab):
    gw = up(lab)
    lab.inet.run(["nft", "-f", "-"], input=INET_NFT)
    assert gw.seen("acme", 4) == "203.0.113.10"
    lab.gw.ip("-4", "route", "flush", "table", "60000")
    lab.gw.ip("-6", "route", "flush", "table", "60000")
    assert_blocked(gw, "acme")
    assert gw.seen("globex", 4, retry=False) == "203.0.113.20"  # only acme's table is gone
    assert foreign_packets(lab) == 0
    drift = lab.wggw("plan", "--detailed-exitcode", ok_codes=(2,)).stdout
    assert "table 60000" in drift
    lab.wggw("apply")
    assert gw.seen("acme", 4) == "203.0.113.10" and gw.seen("acme", 6) == "2001:db8:ffff::10"


@pytest.mark.kernel_tier
def test_uplink_gone_fails_closed_never_main(lab):
    gw = up(lab)
    lab.inet.run(["nft", "-f", "-"], input=INET_NFT)
    # A second way out that main would happily use: if tenant traffic fell through to main
    # it would leave here, unNATed, or masqueraded by someone else.
    lab.gw.ip("link", "set", lab.uplink_dev, "down")
    assert_blocked(gw, "acme")
    lab.gw.ip("link", "set", lab.uplink_dev, "up")
    lab.wggw("apply")  # the kernel dropped the routes with the link: apply restores them
    assert gw.seen("acme", 4) == "203.0.113.10"
    assert foreign_packets(lab) == 0


def test_a_foreign_masquerade_at_an_earlier_priority_cannot_leak(lab):
    gw = up(lab)
    lab.inet.run(["nft", "-f", "-"], input=INET_NFT)
    foreign = (
        "table inet handmade {\n chain post { type nat hook postrouting priority 50;"
        " policy accept;\n"
        f'  oifname "{lab.uplink_dev}" masquerade\n }}\n}}\n'
    )
    lab.gw.run(["nft", "-f", "-"], input=foreign)
    assert_blocked(gw, "acme")
    # The masquerade binds first and picks the uplink's address: the guard drops what it
    # picked unless (by address selection) it happens to be the tenant's own egress.
    for tenant, t in TENANTS.items():
        for v in (4, 6):
            try:
                assert gw.seen(tenant, v, retry=False) == t["egress"][v // 6]
            except FetchError:
                pass
    assert foreign_packets(lab) == 0
    lab.wggw("apply")  # wggw never touches a table it does not own
    assert "masquerade" in lab.gw.run(["nft", "list", "table", "inet", "handmade"]).stdout
    lab.gw.run(["nft", "delete", "table", "inet", "handmade"])
    assert gw.seen("acme", 4) == "203.0.113.10"  # with the foreign NAT gone, traffic flows again


@pytest.mark.kernel_tier
def test_idempotent_and_live_sessions_survive_other_peer_changes(lab):
    gw = up(lab)
    assert gw.seen("acme", 4) == "203.0.113.10"
    before = gw.handshake_of("acme/laptop")
    assert before is not None
    lab.wggw("plan", "--detailed-exitcode")
    assert "Nothing to do" in lab.wggw("apply").stdout
    for i in range(3):
        lab.wggw("peer", "add", f"globex/extra{i}")
    lab.wggw("peer", "add", "acme/extra")
    applied = lab.wggw("apply").stdout
    assert applied.count("# add") == 4 and "remove" not in applied
    lab.wggw("peer", "remove", "globex/extra1")
    lab.wggw("peer", "remove", "acme/extra")
    applied = lab.wggw("apply").stdout
    assert applied.count(" remove") == 2 and "# add" not in applied and "# update" not in applied
    assert gw.handshake_of("acme/laptop") == before  # the session was never torn down
    assert gw.seen("acme", 4, retry=False) == "203.0.113.10"
    lab.wggw("plan", "--detailed-exitcode")
    prom = lab.workdir / "wggw.prom"
    lab.wggw("status", "--prometheus", str(prom))
    text = prom.read_text()
    extra0 = r'wggw_peer_configured\{interface="[^"]+",peer="extra0",tenant="globex"\} 1'
    assert re.search(extra0, text)
    assert "wggw_drift_changes 0.0" in text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("wggw_peer_latest_handshake_timestamp_seconds{")
        and 'peer="laptop",tenant="acme"}' in ln
    )
    assert float(line.split()[-1]) > 0


def test_tenant_and_peer_remove_then_apply_remove_just_their_part(lab):
    gw = up(lab)
    assert gw.seen("globex", 4) == "203.0.113.20"
    lab.wggw("peer", "remove", "globex/laptop")
    lab.wggw("tenant", "remove", "globex")
    lab.wggw("apply")
    assert_blocked(gw, "globex")
    assert gw.seen("acme", 4, retry=False) == "203.0.113.10"
    rules = lab.gw.ip("rule").stdout
    assert "lookup 60001" not in rules and "lookup 60000" in rules
    assert "203.0.113.20" not in lab.gw.ip("addr", "show", lab.uplink_dev).stdout
    lab.wggw("plan", "--detailed-exitcode")


def _foreign_objects(lab) -> None:
    """Things other tools own: wggw must leave them exactly as they are."""
    lab.gw.run(
        ["nft", "-f", "-"],
        input="table inet handmade {\n chain hm_forward { type filter hook forward "
        "priority 10; policy accept;\n  tcp dport 22 counter accept\n }\n}\n",
    )
    lab.gw.ip("rule", "add", "pref", "100", "fwmark", "0xca6c", "lookup", "51820")
    lab.gw.ip("route", "add", "192.0.2.0/24", "dev", lab.uplink_dev, "table", "51820")
    lab.gw.ip("addr", "add", "203.0.113.99/32", "dev", lab.uplink_dev)


def test_down_leaves_no_trace_and_touches_nothing_else(lab):
    _foreign_objects(lab)
    before = snapshot(lab.gw)
    gw = up(lab)
    assert gw.seen("acme", 4) == "203.0.113.10"
    during = snapshot(lab.gw)
    assert "handmade" in during["nft"] and "lookup 51820" in during["rules4"]
    lab.wggw("down")
    assert snapshot(lab.gw) == before
    assert "Nothing of wggw's" in lab.wggw("down").stdout  # a second down finds nothing


def test_down_without_the_store(lab):
    before = snapshot(lab.gw)
    up(lab)
    shutil.rmtree(lab.state_dir)
    lab.wggw("down")
    assert snapshot(lab.gw) == before


@pytest.mark.parametrize("delay", [0.25, 0.6, 1.0])
def test_crash_mid_apply_then_down_or_apply_converges(lab, delay):
    before = snapshot(lab.gw)
    gw = Gateway(lab, new_ifname("wgw")).configure()
    for i in range(30):  # enough work that a kill lands part-way
        lab.wggw("peer", "add", f"acme/p{i}")
    argv = [
        "ip",
        "netns",
        "exec",
        lab.gw.name,
        sys.executable,
        "-m",
        "wggw.cli.app",
        "--state-dir",
        str(lab.state_dir),
        "apply",
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=lab._py_env()
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    lab.wggw("apply")  # converges from wherever the crash left it
    lab.wggw("plan", "--detailed-exitcode")
    gw.connect("acme")
    assert gw.seen("acme", 4) == "203.0.113.10"
    lab.client("acme").down_wireguard()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=lab._py_env()
    )
    time.sleep(delay / 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    lab.wggw("down")
    assert snapshot(lab.gw) == before
