"""The lab harness on its own, without wggw: topology, full-tunnel clients, complete teardown.

The gateway side here is a bare wireguard-go configured by `wg set` from 0600 files, so a failure
in these tests is the harness's, never wggw's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from wggw.lab import topology as netnslab
from wggw.lab.netns import cmdline, run
from wggw.lab.topology import FetchError, Lab, LabError
from wggw.lab.wg import WG_SOCKET_DIR, new_ifname, write_secret_file

V4, V6 = netnslab.INET_URL_V4, netnslab.INET_URL_V6


def _keypair() -> tuple[str, str]:
    # Keys travel through stdin/stdout only, never argv.
    priv = run(["wg", "genkey"]).stdout.strip()
    return priv, run(["wg", "pubkey"], input=priv + "\n").stdout.strip()


def _host_snapshot() -> dict[str, set[str]]:
    netns = run(["ip", "netns", "list"]).stdout.split("\n")
    procs = run(["pgrep", "-a", "wireguard-go"], check=False).stdout.splitlines()
    socks = os.listdir(WG_SOCKET_DIR) if WG_SOCKET_DIR.exists() else []
    return {
        "netns": {n.split()[0] for n in netns if n.strip()},
        "procs": set(procs),
        "socks": set(socks),
    }


def _setup_gateway(lab: Lab, roles: list[str]) -> dict[str, str]:
    """A wireguard-go gateway on 10.99.0.1 / fd00:99::1; returns a client config per role."""
    gw, tmp = lab.gw, lab.workdir
    ifname, _pid = lab.start_gateway_wireguard()
    gw_priv, gw_pub = _keypair()
    args = [
        "wg",
        "set",
        ifname,
        "listen-port",
        "51820",
        "private-key",
        str(write_secret_file(tmp / "gw.key", gw_priv + "\n")),
    ]
    confs = {}
    for i, role in enumerate(roles, start=2):
        priv, pub = _keypair()
        psk = run(["wg", "genpsk"]).stdout.strip()
        args += [
            "peer",
            pub,
            "preshared-key",
            str(write_secret_file(tmp / f"{role}.psk", psk + "\n")),
            "allowed-ips",
            f"10.99.0.{i}/32,fd00:99::{i}/128",
        ]
        confs[role] = (
            f"[Interface]\nPrivateKey = {priv}\nAddress = 10.99.0.{i}/32, fd00:99::{i}/128\n"
            f"DNS = 192.0.2.53\nMTU = 1420\n\n[Peer]\nPublicKey = {gw_pub}\nPresharedKey = {psk}\n"
            f"Endpoint = {lab.gw_underlay_ip}:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n"
            f"PersistentKeepalive = 25\n"
        )
    gw.run(args)
    gw.ip("addr", "add", "10.99.0.1/24", "dev", ifname)
    gw.ip("addr", "add", "fd00:99::1/64", "dev", ifname, "nodad")
    gw.ip("link", "set", ifname, "mtu", "1420", "up")
    return confs


def _reach_retry(ns, addr: str, attempts: int = 10) -> bool:
    # The first packet through a fresh tunnel starts the handshake and may be lost.
    return any(ns.can_reach(addr) for _ in range(attempts))


def test_gateway_reaches_internet_host_which_sees_the_uplink_address(lab: Lab) -> None:
    assert lab.gw.fetch(V4) == "203.0.113.1"
    assert lab.gw.fetch(V6) == "2001:db8:ffff::1"


def test_internet_host_routes_back_only_to_the_uplink(lab: Lab) -> None:
    v4 = lab.inet.ip("-4", "route").stdout.split()
    v6 = [line.split()[0] for line in lab.inet.ip("-6", "route").stdout.splitlines()]
    assert "default" not in v4 and "default" not in v6
    assert lab.inet.ip("-4", "route", "get", "10.10.0.2", check=False).returncode != 0
    assert set(v6) <= {"2001:db8:ffff::/64", "fe80::/64"}


def test_clients_reach_only_the_gateway_underlay(lab: Lab) -> None:
    acme = lab.client("acme")
    assert acme.can_reach(lab.gw_underlay_ip)
    assert not acme.can_reach("203.0.113.254")  # no tunnel, no route: nothing leaks around wggw
    with pytest.raises(LabError, match="not a lab address"):
        acme.can_reach("8.8.8.8")


def test_full_tunnel_clients_through_a_plain_wireguard_go_gateway(lab: Lab) -> None:
    confs = _setup_gateway(lab, ["acme", "globex"])
    for role, conf in confs.items():
        lab.client(role).up_wireguard(conf)
    acme, globex = lab.client("acme"), lab.client("globex")
    assert acme.wg_ifname != globex.wg_ifname
    assert _reach_retry(acme, "10.99.0.1") and _reach_retry(globex, "fd00:99::1")
    assert acme.handshake_age() is not None and acme.handshake_age() < 30
    link = acme.ip("-d", "link", "show", acme.wg_ifname).stdout
    assert "mtu 1420" in link
    # Forwarded but not NATed: the internet host has no route back, so nothing comes back.
    lab.gw.sysctl("net.ipv4.ip_forward", 1)
    lab.gw.sysctl("net.ipv6.conf.all.forwarding", 1)
    with pytest.raises(FetchError):
        acme.fetch(V4, timeout=1)
    lab.gw.run(
        ["nft", "-f", "-"],
        input="table inet labnat {\n chain post {\n"
        '  type nat hook postrouting priority srcnat; oifname "uplink0" masquerade\n }\n}\n',
    )
    assert acme.fetch_retry(V4) == "203.0.113.1"
    assert globex.fetch_retry(V6) == "2001:db8:ffff::1"


def test_replace_and_down_remove_the_old_tunnel(lab: Lab) -> None:
    confs = _setup_gateway(lab, ["acme"])
    acme = lab.client("acme")
    first = acme.up_wireguard(confs["acme"])
    second = acme.replace_wireguard(confs["acme"])
    assert first != second and not (WG_SOCKET_DIR / f"{first}.sock").exists()
    assert acme.ip("link", "show", first, check=False).returncode != 0
    assert _reach_retry(acme, "10.99.0.1")
    acme.down_wireguard()
    acme.down_wireguard()  # idempotent
    assert not (WG_SOCKET_DIR / f"{second}.sock").exists()
    assert acme.handshake_age() is None and acme.wg_ifname is None


def _assert_nothing_left(lab: Lab, pids: list[int], ifnames: list[str], before: dict) -> None:
    after = _host_snapshot()
    # Other runs may share this host, so judge only what this run created.
    assert not [n for n in after["netns"] if n.endswith(lab.suffix)]
    assert not [p for p in pids if Path(f"/proc/{p}").exists() and cmdline(p)]
    assert not [
        line for line in after["procs"] - before["procs"] if any(i in line for i in ifnames)
    ]
    assert not [s for s in after["socks"] if any(s.startswith(i) for i in ifnames)]
    assert lab.workdir is not None and not lab.workdir.exists()


def test_teardown_leaves_no_namespace_process_or_socket(require_root: None) -> None:
    before = _host_snapshot()
    lab = Lab(("acme", "globex")).start()
    try:
        confs = _setup_gateway(lab, ["acme", "globex"])
        for role, conf in confs.items():
            lab.client(role).up_wireguard(conf)
        # A wireguard-go we did not start ourselves (as wggw would), daemonized, left running.
        stray = new_ifname("wgs")
        subprocess.run(
            ["ip", "netns", "exec", lab.gw.name, "wireguard-go", stray],
            check=True,
            capture_output=True,
            timeout=10,
        )
        pids = lab.procs.pids()
        ifnames = [c.wg_ifname for c in lab.clients.values()] + sorted(lab.box.ifnames) + [stray]
        assert len(pids) == 4 and all((WG_SOCKET_DIR / f"{i}.sock").exists() for i in ifnames)
    finally:
        lab.close()
    lab.close()  # idempotent
    _assert_nothing_left(lab, pids, ifnames, before)


def test_failed_build_cleans_up(require_root: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Lab) -> None:
        raise LabError("injected failure")

    monkeypatch.setattr(Lab, "_start_http", boom)
    lab = Lab(("acme",))
    with pytest.raises(LabError, match="injected"):
        lab.start()
    assert lab.suffix and not [n for n in _host_snapshot()["netns"] if n.endswith(lab.suffix)]
    assert lab.namespaces == []
