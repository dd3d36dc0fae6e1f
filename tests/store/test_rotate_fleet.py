"""Key rotation in a fleet: run on an operator's host (no --gateway), `wggw rotate` changes the
keys in the store and builds nothing of what is placed on the gateways (their agents apply the
new keys); run on a gateway's host, it converges that gateway's part only. On every store."""

from __future__ import annotations

import time

from wggw.backends.fake import FakeSystem
from wggw.ops import rotation
from wggw.ops.state import open_existing


def _rotate(state_dir, system, gateway):
    with open_existing(state_dir) as store:
        before = {p.ref: p.public_key for p in store.load().peers}
        rotation.rotate(
            store, system, time.time(), older_than=0, grace=60, selected=None, out=None,
            notify=None, dry_run=False, gateway=gateway,
        )  # fmt: skip
        after = {p.ref: p.public_key for p in store.load().peers}
    return before, after


def test_rotate_on_the_operators_host_builds_nothing_of_the_gateways(kind, gw, state_dir):
    gw("gateway", "add", "gw1", "--uplink", "eth0", "--via", "192.0.2.254")
    gw("interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "vpn.example.com:51821",
       "--gateway", "gw1")  # fmt: skip
    gw("tenant", "add", "beta", "--interface", "wg1", "--pool", "10.20.0.0/24",
       "--egress", "198.51.100.20")  # fmt: skip
    gw("peer", "add", "acme/alice", "beta/ann")
    operator = FakeSystem(links=("eth0",))
    before, after = _rotate(state_dir, operator, None)
    assert all(after[ref] != key for ref, key in before.items())  # every key rotated
    assert set(operator.state.wg) == {"wg0"}  # the local part only: nothing of gw1's wg1
    assert {a.cidr.split("/")[0] for a in operator.state.addresses if a.egress} == {
        "203.0.113.10",
        "2001:db8::10",
    }
    gateway = FakeSystem(links=("eth0",))
    _rotate(state_dir, gateway, "gw1")  # keys in their grace period: nothing more to rotate
    assert set(gateway.state.wg) == {"wg1"}  # gw1's part: beta's interface, not acme's
    # ann's new key, and the old one for its grace period
    assert set(gateway.state.wg["wg1"].peers) == {after["beta/ann"], before["beta/ann"]}
