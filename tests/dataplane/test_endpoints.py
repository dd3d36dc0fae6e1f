"""Remembered peer endpoints (issue 9, defect 5; pure part and the fake): recorded from each
observation, given to peers re-created on a restarted device, with a handshake kick."""

from __future__ import annotations

import ipaddress as ip
from dataclasses import replace

from wggw.backends.fake import FakeSystem
from wggw.core import endpoints, keys, naming
from wggw.core.model import Interface, Peer, State, Tenant
from wggw.core.plan import Observed, UpsertPeer
from wggw.core.wgtypes import WgPeerState
from wggw.ops import converge as reconcile

IFACE = Interface("wge0", 51820, "192.0.2.1:51820", keys.generate_private(), "")
ACME = Tenant(
    "acme",
    "wge0",
    (ip.ip_network("10.10.0.0/24"),),
    (ip.ip_address("203.0.113.10"),),
    naming.TABLE_MIN,
)


def peer(j: int, keepalive=None) -> Peer:
    return Peer(
        "acme",
        f"p{j}",
        keys.keypair()[1],
        (ip.ip_interface(f"10.10.0.{2 + j}/32"),),
        0.0,
        keepalive=keepalive,
    )


def connect(fake: FakeSystem, key: str, endpoint: str) -> None:
    dev = fake.state.wg["wge0"]
    dev.peers[key] = replace(dev.peers[key], endpoint=endpoint)


def test_gateway_sets_no_keepalive_even_when_the_client_asks_for_one():
    state = State((IFACE,), (ACME,), (peer(0, keepalive=25),))
    fake = FakeSystem()
    reconcile.converge(state, fake)
    assert [p.keepalive for p in fake.state.wg["wge0"].peers.values()] == [None]


def test_a_restarted_device_gets_the_remembered_endpoints_and_a_kick():
    a, b, c = peer(0), peer(1, keepalive=25), peer(2)
    state = State((IFACE,), (ACME,), (a, b, c))
    fake = FakeSystem()
    reconcile.converge(state, fake)
    connect(fake, a.public_key, "198.51.100.11:40000")
    connect(fake, b.public_key, "[2001:db8::b]:40001")
    reconcile.compute(state, fake)  # an observation (plan/status) records them
    assert fake.endpoints == {
        "wge0": {a.public_key: "198.51.100.11:40000", b.public_key: "[2001:db8::b]:40001"}
    }
    fake.state = replace(fake.state, wg={})  # wireguard-go died: the device and its peers are gone
    reconcile.compute(state, fake)
    assert len(fake.endpoints["wge0"]) == 2  # not forgotten while the device is away
    changes = reconcile.converge(state, fake).changes
    ups = {c.peer.public_key: c.peer.endpoint for c in changes if isinstance(c, UpsertPeer)}
    assert ups == {
        a.public_key: "198.51.100.11:40000",
        b.public_key: "[2001:db8::b]:40001",
        c.public_key: None,
    }
    assert any("endpoint 198.51.100.11:40000" in str(ch) for ch in changes)
    # every peer with an endpoint (the gateway side has no keepalive); c has none to go to
    assert sorted(fake.kicked) == sorted([("wge0", a.public_key), ("wge0", b.public_key)])
    assert fake.state.wg["wge0"].peers[a.public_key].endpoint == "198.51.100.11:40000"
    assert reconcile.compute(state, fake).changes == []


def test_removed_peers_and_devices_are_forgotten():
    a, b = peer(0), peer(1)
    want = reconcile.compute(State((IFACE,), (ACME,), (a,)), FakeSystem()).desired
    memory = {
        "wge0": {a.public_key: "198.51.100.1:1", b.public_key: "198.51.100.2:2"},
        "old0": {"k": "x:1"},
    }
    kept = endpoints.remember(memory, want, Observed())
    assert kept == {"wge0": {a.public_key: "198.51.100.1:1"}}
    seen = Observed(
        wg={
            "wge0": replace(
                FakeSystem().state.wg.get("wge0") or _dev(),
                peers={a.public_key: WgPeerState(a.public_key, None, (), None, "198.51.100.9:9")},
            )
        }
    )
    assert endpoints.remember(memory, want, seen) == {"wge0": {a.public_key: "198.51.100.9:9"}}


def _dev():
    from wggw.core.wgtypes import WgDeviceState

    return WgDeviceState("wge0", None, 0, {})
