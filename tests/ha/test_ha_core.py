"""core/ha.py and what HA changes in the compiled state (pure): VRRP instances per HA
interface, floating egress left to keepalived (no address, no route `src`, no conflict), the
endpoint's source rule in nft, and the keepalived text rendered from templates/."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from wggwtest import require_netns

from wggw.core import ha
from wggw.core.desired import compile_state
from wggw.core.errors import HostConflictError, ValidationError
from wggw.core.hostfacts import DefaultRoute, HostFacts
from wggw.core.keys import Secret
from wggw.core.model import Gateway, Interface, Peer, State, Tenant
from wggw.core.nftables import render
from wggw.ops import agentclient
from wggw.ops import ha as hops

KEY = Secret("a" * 43 + "=")
ip = ipaddress.ip_address
net = ipaddress.ip_network


def _state(gateways=("gw1", "gw2"), endpoint="192.0.2.10:51820", **tenant_kw) -> State:
    iface = Interface("wgha0", 51820, endpoint, KEY, "pub", gateways=gateways)
    tenant = Tenant(
        "acme",
        "wgha0",
        (net("10.10.0.0/24"), net("fd00:10::/64")),
        (ip("203.0.113.10"), ip("2001:db8:0:1::10")),
        60000,
        **tenant_kw,
    )
    peer = Peer("acme", "p", "peerkey=", (ipaddress.ip_interface("10.10.0.2/32"),), 0.0)
    return State(
        interfaces=(iface,),
        tenants=(tenant,),
        peers=(peer,),
        gateways=(Gateway("gw1"), Gateway("gw2")),
    )


FACTS = HostFacts(
    {4: DefaultRoute("up0", "203.0.113.1"), 6: DefaultRoute("up0", "2001:db8:0:1::1")},
    frozenset(),
    frozenset({"up0", "cl0", "wgha0"}),
)
CONNECTED = {
    "cl0": [ipaddress.ip_interface("192.0.2.2/24")],
    "up0": [ipaddress.ip_interface("203.0.113.2/24")],
}


def test_one_instance_per_ha_interface_with_priority_by_gateway_order() -> None:
    state = _state()
    [first] = ha.instances(state, "gw1", FACTS, CONNECTED)
    [second] = ha.instances(state, "gw2", FACTS, CONNECTED)
    assert (first.priority, second.priority) == (200, 190)
    assert first.vrid == second.vrid == 1 + 51820 % 255
    assert first.name == "wggw_wgha0" and ha.interface_of(first.name) == "wgha0"
    assert first.interface == "up0"  # advertisements where the gateways' uplinks meet
    # the endpoint on the clients' side (its subnet), the egress IPs on the uplink, v4 and v6
    assert first.vips == (
        ha.Vip("192.0.2.10/32", "cl0"),
        ha.Vip("203.0.113.10/32", "up0"),
        ha.Vip("2001:db8:0:1::10/128", "up0"),
    )
    assert [v.cidr for v in first.advertised] == ["192.0.2.10/32", "203.0.113.10/32"]
    assert [v.cidr for v in first.excluded] == ["2001:db8:0:1::10/128"]
    assert not first.nopreempt
    assert ha.instances(state, "gw1", FACTS, CONNECTED, "nopreempt")[0].nopreempt
    assert ha.instances(state, "gw3", FACTS, CONNECTED) == []  # not one of its gateways


def test_single_gateway_pinned_and_dns_endpoints_do_not_float() -> None:
    assert ha.instances(_state(gateways=("gw1",)), "gw1", FACTS, CONNECTED) == []
    pinned = _state(gateway="gw1")
    assert ha.floating_egress(pinned) == frozenset()
    [inst] = ha.instances(pinned, "gw1", FACTS, CONNECTED)
    assert [v.cidr for v in inst.vips] == ["192.0.2.10/32"]  # only the endpoint floats
    [dns] = ha.instances(_state(endpoint="vpn.example:51820"), "gw1", FACTS, CONNECTED)
    assert "192.0.2.10/32" not in [v.cidr for v in dns.vips]
    v6 = ha.endpoint_ip(replace(_state().interfaces[0], endpoint="[2001:db8::5]:51820"))
    assert v6 == ip("2001:db8::5")


def test_vrid_collisions_are_refused_by_name() -> None:
    state = _state()
    other = replace(state.interfaces[0], name="wgha1", listen_port=51820 + 255)
    with pytest.raises(ValidationError, match="wgha1.*VRRP id|VRRP id.*wgha0"):
        ha.instances(replace(state, interfaces=(*state.interfaces, other)), "gw1", FACTS, {})
    with pytest.raises(ValidationError, match="nopreempt"):
        ha.instances(state, "gw1", FACTS, CONNECTED, "sometimes")


def test_floating_egress_is_keepalived_s_not_wggw_s() -> None:
    desired = compile_state(_state(), FACTS)
    assert not [a for a in desired.addresses if a.egress]  # wggw adds no egress address
    defaults = [r for r in desired.routes if r.dst == "default"]
    assert len(defaults) == 2 and all(r.src is None for r in defaults)  # no `src` to lose
    # The same tenant on one gateway: wggw's own egress address and `src` as before.
    single = compile_state(_state(gateways=("gw1",)), FACTS)
    assert {a.cidr for a in single.addresses if a.egress} == {
        "203.0.113.10/32",
        "2001:db8:0:1::10/128",
    }
    assert {r.src for r in single.routes if r.dst == "default"} == {
        "203.0.113.10",
        "2001:db8:0:1::10",
    }


def test_keepalived_s_address_on_the_host_is_no_conflict_but_a_foreign_one_is() -> None:
    held = replace(FACTS, foreign_addresses=frozenset({"203.0.113.10"}))
    compile_state(_state(), held)  # the active gateway: keepalived holds it
    with pytest.raises(HostConflictError, match="already an address"):
        compile_state(_state(gateways=("gw1",)), held)
    hop = replace(FACTS, default_routes={4: DefaultRoute("up0", "203.0.113.10")})
    with pytest.raises(HostConflictError, match="next hop"):
        compile_state(_state(), hop)  # still refused: it would take the router's address


def test_guard_and_snat_are_the_same_on_both_gateways_and_the_endpoint_leaves_from_the_vip():
    ha_text, single = render(_state()).text, render(_state(gateways=("gw1",))).text
    # the tenant's SNAT and fail-closed guard do not depend on holding the address
    for line in ("10.10.0.0/24 : 203.0.113.10", "10.10.0.0/24 . 203.0.113.10"):
        assert line in ha_text and line in single
    rule = "udp sport 51820 ip saddr != 192.0.2.10 ip saddr set 192.0.2.10"
    assert rule in ha_text and rule not in single
    # only the host's own packets: a tenant's forwarded one from port 51820 keeps its egress
    assert "chain ha_endpoint {\n\t\ttype filter hook output priority filter;" in ha_text
    assert render(_state()).digest != render(_state(gateways=("gw1",))).digest


def _conf(tmp_path, state: State, **kw) -> str:
    text = hops.render_config(state, hops.Settings("gw1", **kw), FACTS, CONNECTED)
    assert text is not None
    return text


def test_keepalived_config_renders_and_keepalived_accepts_it(tmp_path) -> None:
    text = _conf(tmp_path, _state())
    for want in (
        "vrrp_instance wggw_wgha0 {",
        "state MASTER",
        "interface up0",
        f"virtual_router_id {1 + 51820 % 255}",
        "priority 200",
        "advert_int 0.5",
        "192.0.2.10/32 dev cl0",
        "virtual_ipaddress_excluded {\n        2001:db8:0:1::10/128 dev up0",
        "garp_master_repeat 3",
        "wggw_health",
        f"hahook.py check {agentclient.socket_path()}",
    ):
        assert want in text, want
    assert "vrrp_strict" not in text.replace("No vrrp_strict", "")
    calm = _conf(tmp_path, _state(), failback="nopreempt")
    assert "nopreempt" in calm and "state MASTER" not in calm
    backup = hops.render_config(_state(), hops.Settings("gw2"), FACTS, CONNECTED)
    assert backup is not None and "state BACKUP" in backup and "priority 190" in backup
    assert hops.render_config(_state(gateways=("gw1",)), hops.Settings("gw1"), FACTS, {}) is None
    keepalived = shutil.which("keepalived") or "/usr/sbin/keepalived"
    require_netns("keepalived -t", ("ip", "keepalived", "unshare"))
    for conf in (text, calm):
        path = tmp_path / "k.conf"
        path.write_text(conf)
        # keepalived -t checks the devices too: in a network namespace of its own (gone with
        # the process) where they exist
        script = f"ip link add up0 type veth peer name cl0 && {keepalived} -t -f {path}"
        run = subprocess.run(
            ["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0, run.stdout + run.stderr


def test_config_is_written_and_reloaded_only_when_it_changes(tmp_path) -> None:
    conf, pidfile = tmp_path / "keepalived.conf", tmp_path / "keepalived.pid"
    hup = []
    # a real process standing in for keepalived's pid: counts its SIGHUPs
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal,sys,time\n"
            "signal.signal(signal.SIGHUP, lambda *a: print('HUP', flush=True))\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        pidfile.write_text(f"{child.pid}\n")
        assert hops.sync_config(None, conf, pidfile) is False and not conf.exists()
        assert hops.sync_config("a\n", conf, pidfile) is True
        hup.append(child.stdout.readline())
        assert hops.sync_config("a\n", conf, pidfile) is False  # same text: no reload
        assert hops.sync_config("b\n", conf, pidfile) is True
        hup.append(child.stdout.readline())
        assert hops.sync_config(None, conf, pidfile) is True  # HA gone: an empty config
        hup.append(child.stdout.readline())
        assert "no interface" in conf.read_text() and conf.stat().st_mode & 0o077 == 0
    finally:
        child.kill()
        child.wait(timeout=10)
    assert hup == ["HUP\n"] * 3
    assert hops.sync_config("c\n", conf, pidfile) is True  # nobody to reload: written anyway


def test_keepalived_unit_verifies(tmp_path) -> None:
    """templates/wggw-keepalived.service passes `systemd-analyze verify` and uses wggw's files."""
    unit = Path(__file__).resolve().parents[2] / "templates" / "wggw-keepalived.service"
    text = unit.read_text()
    for part in ("--use-file /run/wggw/keepalived.conf", "--pid /run/wggw/keepalived.pid"):
        assert part in text  # the paths ops/ha.py writes and signals (WGGW_RUN_DIR=/run/wggw)
    assert hops.conf_path().name == "keepalived.conf" and hops.pid_path().name == "keepalived.pid"
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze missing (Debian package systemd; scripts/install-deps)")
        pytest.skip("systemd-analyze missing (Debian package systemd)")
    copy = tmp_path / unit.name
    copy.write_text(text)
    res = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr


def _hook(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-I", str(hops.HOOK), *args], capture_output=True, text=True, timeout=30
    )


def test_hook_fails_closed_without_an_agent_and_passes_what_it_answers(tmp_path) -> None:
    import json
    import socket
    import threading

    gone = tmp_path / "none.sock"
    res = _hook("check", str(gone))
    assert res.returncode == 1 and "does not answer" in res.stderr
    assert _hook("notify", str(gone), "INSTANCE", "wggw_wg0", "MASTER", "200").returncode == 1
    assert _hook("bogus").returncode == 2
    path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    replies = [
        {"ok": True, "healthy": False, "reason": "uplink down: up0"},
        {"ok": True, "healthy": True},
        {"ok": True},
    ]
    asked: list[dict] = []

    def serve() -> None:
        for reply in replies:
            conn, _ = server.accept()
            with conn:
                asked.append(json.loads(conn.makefile().readline()))
                conn.sendall(json.dumps(reply).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        res = _hook("check", str(path))
        assert res.returncode == 1 and "uplink down: up0" in res.stderr
        assert _hook("check", str(path)).returncode == 0
        assert _hook("notify", str(path), "INSTANCE", "wggw_wg0", "MASTER", "200").returncode == 0
        thread.join(10)
    finally:
        server.close()
    assert asked == [
        {"op": "health"},
        {"op": "health"},
        {"op": "ha", "type": "INSTANCE", "instance": "wggw_wg0", "state": "MASTER"},
    ]


def test_an_ipv6_only_interface_advertises_over_ipv6() -> None:
    base = _state(endpoint="[2001:db8:5::10]:51820")
    v6 = replace(
        base,
        tenants=(
            replace(base.tenants[0], pools=(net("fd00:10::/64"),), egress=(ip("2001:db8::a"),)),
        ),
    )
    connected = {"cl0": [ipaddress.ip_interface("2001:db8:5::2/64")]}
    [inst] = ha.instances(v6, "gw2", FACTS, connected)
    assert [v.cidr for v in inst.advertised] == ["2001:db8:5::10/128", "2001:db8::a/128"]
    assert inst.excluded == () and inst.vips[0].dev == "cl0"
    assert inst.interface == "up0"  # the tenant's v6 uplink


@pytest.mark.parametrize("endpoint", ["192.0.2.10:51820", "[2001:db8:5::10]:51820"])
def test_the_endpoint_source_rule_loads(endpoint: str) -> None:
    """The nft text with the ha_endpoint chain passes the kernel's own parser (nft -c), v4/v6."""
    require_netns("nft -c of the HA table", ("nft", "unshare"))
    text = render(_state(endpoint=endpoint)).text
    assert "chain ha_endpoint" in text
    run = subprocess.run(
        ["unshare", "-n", "nft", "-c", "-f", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr


def test_vrrp_settings_from_the_environment(monkeypatch) -> None:
    from wggw.agent.ha import settings_from_env

    monkeypatch.setenv("WGGW_HA_FAILBACK", "nopreempt")
    monkeypatch.setenv("WGGW_HA_ADVERT_INT", "0.2")
    got = settings_from_env("gw1")
    assert (got.gateway, got.failback, got.advert_int) == ("gw1", "nopreempt", 0.2)
    for name, bad in (("WGGW_HA_FAILBACK", "later"), ("WGGW_HA_ADVERT_INT", "fast")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ValidationError, match=name):
            settings_from_env("gw1")
        monkeypatch.delenv(name)


def test_a_failed_kick_is_the_request_s_error_not_the_agent_s() -> None:
    from wggw.agent.ha import HaAgent

    logged: list[tuple] = []
    agent = HaAgent(None, lambda *a, **kw: logged.append((a, kw)))
    agent.state = _state()

    class GoneStore:
        def peer_reports(self):
            raise OSError("database gone")

    reply = agent.notify({"instance": "wggw_wgha0", "state": "MASTER"}, GoneStore(), object())
    assert reply == {"ok": False, "error": "OSError: database gone"}
    assert agent.role == {"wgha0": "MASTER"} and logged[-1][1]["trigger"] == "takeover"
    assert not agent.notify({"instance": "vrrp_other", "state": "MASTER"}, GoneStore(), None)["ok"]
    backup = agent.notify({"instance": "wggw_wgha0", "state": "BACKUP"}, GoneStore(), None)
    assert backup["ok"] and backup["kicked"] == 0  # no kick, so no store read
