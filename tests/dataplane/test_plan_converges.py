"""Planner and compiler against the fake host: every transition between random
configurations converges in one apply, re-planning is empty, the empty state removes
everything, one-peer changes touch one peer, and printed plans never show secrets."""

import ipaddress as ip
import random

import pytest

from wggw.backends.fake import FakeSystem
from wggw.core import keys, naming
from wggw.core.desired import compile_state
from wggw.core.errors import ValidationError
from wggw.core.model import Interface, Peer, State, Tenant
from wggw.core.plan import RemovePeer, UpsertPeer, plan
from wggw.ops import converge as reconcile

IFACE = Interface("wgt0", 51820, "192.0.2.1:51820", keys.generate_private(), "")


def tenant(i: int, v6=True) -> Tenant:
    pools = (ip.ip_network(f"10.{i}.0.0/24"),) + (
        (ip.ip_network(f"fd00:{i:x}::/64"),) if v6 else ()
    )
    egress = (ip.ip_address(f"203.0.113.{i}"),) + (
        (ip.ip_address(f"2001:db8::{i:x}"),) if v6 else ()
    )
    return Tenant(f"t{i}", IFACE.name, pools, egress, naming.TABLE_MIN + i)


def peer(t: Tenant, j: int) -> Peer:
    priv, pub = keys.keypair()
    addrs = tuple(
        ip.ip_interface(f"{p.network_address + 2 + j}/{p.max_prefixlen}") for p in t.pools
    )
    return Peer(t.name, f"p{j}", pub, addrs, 0.0, priv, keys.generate_psk())


def random_state(rng: random.Random, pool_of_peers: dict) -> State:
    ts = [
        tenant(i, v6=rng.random() < 0.7)
        for i in sorted(rng.sample(range(1, 40), rng.randint(0, 6)))
    ]
    peers = []
    for t in ts:
        for j in range(rng.randint(0, 3)):
            key = (t.name, j, len(t.pools))
            peers.append(pool_of_peers.setdefault(key, peer(t, j)))
    return State((IFACE,) if ts or rng.random() < 0.5 else (), tuple(ts), tuple(peers))


def test_random_transitions_converge_and_down_removes_everything():
    rng = random.Random(7)
    fake, cache = FakeSystem(), {}
    for _ in range(40):
        state = random_state(rng, cache)
        reconcile.converge(state, fake)
        assert reconcile.compute(state, fake).changes == []
    reconcile.teardown([fake])
    s = fake.observe()
    assert not (s.wg or s.links or s.addresses or s.routes or s.rules or s.nft.present)


def test_one_peer_change_touches_only_that_peer():
    t = tenant(1)
    peers = tuple(peer(t, j) for j in range(50))
    fake = FakeSystem()
    reconcile.converge(State((IFACE,), (t,), peers), fake)
    extra = peer(t, 60)
    changes = reconcile.compute(State((IFACE,), (t,), peers + (extra,)), fake).changes
    assert [type(c) for c in changes] == [UpsertPeer]
    changes = reconcile.compute(State((IFACE,), (t,), peers[1:]), fake).changes
    assert changes == [RemovePeer(IFACE.name, peers[0].public_key)]


def test_plan_lines_mask_secrets():
    t = tenant(2)
    p = peer(t, 0)
    state = State((IFACE,), (t,), (p,))
    text = "\n".join(
        str(c) for c in plan(compile_state(state, FakeSystem().facts()), FakeSystem().observe())
    )
    assert text.count("[#] ") >= 5
    for secret in (IFACE.private_key, p.private_key, p.psk):
        assert secret.reveal() not in text
    assert p.public_key in text


def test_routes_use_uplink_gateway_and_egress_source():
    t = tenant(3)
    want = compile_state(State((IFACE,), (t,), ()), FakeSystem().facts())
    defaults = {r.family: r for r in want.routes if r.dst == "default"}
    assert defaults[4].gateway == "192.0.2.254" and defaults[4].src == "203.0.113.3"
    assert defaults[6].src == "2001:db8::3" and defaults[4].table == t.table
    # egress not configured on the host: wggw adds it to the uplink, marked as its own
    assert {(a.ifname, a.cidr) for a in want.addresses if a.egress} == {
        ("eth0", "203.0.113.3/32"),
        ("eth0", "2001:db8::3/128"),
    }


def test_missing_uplink_is_a_validation_error():
    t = Tenant(
        "x",
        IFACE.name,
        (ip.ip_network("10.9.0.0/24"),),
        (ip.ip_address("203.0.113.9"),),
        naming.TABLE_MIN,
        uplink="nosuchdev",
    )
    with pytest.raises(ValidationError, match="uplink nosuchdev"):
        compile_state(State((IFACE,), (t,), ()), FakeSystem().facts())
