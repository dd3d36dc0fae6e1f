"""The status report: per-peer live data matched by public key, per-tenant totals, drift lines."""

import ipaddress as ip

from wggw.backends.fake import FakeSystem
from wggw.core import keys, naming, status
from wggw.core.model import Interface, Peer, State, Tenant
from wggw.core.wgtypes import WgPeerState
from wggw.ops import converge as reconcile

NOW = 1_800_000_000.0


def test_peers_tenants_and_drift():
    iface = Interface("wgs0", 51820, "192.0.2.1:51820", keys.generate_private(), "")
    tenants = tuple(
        Tenant(
            f"t{i}",
            "wgs0",
            (ip.ip_network(f"10.{i}.0.0/24"),),
            (ip.ip_address(f"203.0.113.{i}"),),
            naming.TABLE_MIN + i,
        )
        for i in (1, 2)
    )
    peers = tuple(
        Peer(t.name, f"p{j}", keys.keypair()[1], (ip.ip_interface(f"10.{i}.0.{2 + j}/32"),), 0.0)
        for i, t in enumerate(tenants, 1)
        for j in range(2)
    )
    state = State((iface,), tenants, peers)
    fake = FakeSystem()
    reconcile.converge(state, fake)
    dev = fake.state.wg["wgs0"]
    live = dev.peers[peers[0].public_key]
    dev.peers[peers[0].public_key] = WgPeerState(
        live.public_key, live.psk, live.allowed_ips, None, "198.51.100.7:4242", NOW - 30, 1000, 2000
    )
    report = status.build(state, reconcile.compute(state, fake, check_nft=False), NOW)
    first = report["peers"][0]
    assert (
        first["endpoint"],
        first["active"],
        first["rx_bytes"],
        first["handshake_age_seconds"],
    ) == ("198.51.100.7:4242", True, 1000, 30.0)
    assert report["tenants"][0] == {
        "name": "t1",
        "interface": "wgs0",
        "peers": 2,
        "active_peers": 1,
        "rx_bytes": 1000,
        "tx_bytes": 2000,
    }
    assert report["tenants"][1]["active_peers"] == 0 and report["drift"] == []
    # a peer the host lost shows as drift and as not configured
    del dev.peers[peers[3].public_key]
    report = status.build(state, reconcile.compute(state, fake, check_nft=False), NOW)
    assert report["peers"][3]["configured"] is False
    assert len(report["drift"]) == 1 and peers[3].public_key in report["drift"][0]
