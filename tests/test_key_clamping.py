"""Device private keys as WireGuard keeps them, and never re-sent unchanged.

The kernel stores the X25519-clamped private key and expires every session of a device when
it is given a key that differs from that copy, even by clamping alone; wireguard-go compares
the raw key, so only the kernel shows it. These tests run without root: the fake host follows
the kernel's rule, and the kernel backend's netlink call is recorded instead of sent.
"""

from __future__ import annotations

import base64
import ipaddress as ip
import os
import sqlite3
from dataclasses import replace

import pytest

from wggw.backends import wg_kernel, wg_uapi
from wggw.backends.fake import FakeSystem
from wggw.core import keys, naming
from wggw.core.model import Interface, Peer, State, Tenant
from wggw.core.plan import ConfigureDevice
from wggw.ops import converge as reconcile
from wggw.ops import objects as service
from wggw.store.sqlite import open_store

# 32 bytes that clamping changes at both ends, and what clamping makes of them.
RAW = base64.b64encode(bytes([0xFF] * 32)).decode()
RAW_CLAMPED = base64.b64encode(bytes([0xF8] + [0xFF] * 30 + [0x7F])).decode()


def is_clamped(secret: keys.Secret) -> bool:
    raw = base64.b64decode(secret.reveal())
    return raw[0] & 7 == 0 and raw[31] & 0xC0 == 0x40


def world(private_key: keys.Secret, port: int = 51820) -> State:
    iface = Interface("wgk0", port, "192.0.2.1:51820", private_key, keys.public_of(private_key))
    tenant = Tenant(
        "acme",
        iface.name,
        (ip.ip_network("10.10.0.0/24"),),
        (ip.ip_address("203.0.113.10"),),
        naming.TABLE_MIN + 1,
    )
    priv, pub = keys.keypair()
    peer = Peer(
        "acme", "laptop", pub, (ip.ip_interface("10.10.0.2/32"),), 0.0, priv, keys.generate_psk()
    )
    return State((iface,), (tenant,), (peer,))


def test_generated_private_keys_are_clamped():
    assert all(is_clamped(keys.generate_private()) for _ in range(64))
    assert all(is_clamped(keys.keypair()[0]) for _ in range(16))


def test_clamping_keeps_the_public_key_and_is_idempotent():
    assert keys.clamp(RAW) == RAW_CLAMPED
    assert keys.clamp(RAW_CLAMPED) == RAW_CLAMPED
    assert keys.public_of(keys.Secret(RAW)) == keys.public_of(keys.Secret(RAW_CLAMPED))
    assert keys.private_key(RAW).reveal() == RAW_CLAMPED
    assert keys.clamp("not base64!") == "not base64!"  # left for Secret's check to report


def test_clamp_matches_the_bit_operations_for_random_keys():
    """keys.clamp reads most keys from their text alone; it must agree with the bytes."""
    for _ in range(2000):
        raw = bytearray(os.urandom(32))
        text = base64.b64encode(raw).decode()
        raw[0] &= 248
        raw[31] = (raw[31] & 127) | 64
        want = base64.b64encode(raw).decode()
        assert keys.clamp(text) == want and keys.clamp(want) == want


def test_keys_stored_before_clamping_are_read_clamped(state_dir):
    """Stores written by earlier versions hold raw keys: they come out as WireGuard keeps them."""
    service.init(state_dir)
    with open_store(state_dir) as s:
        service.add_interface(s, "wg0", 51820, "192.0.2.1:51820", 1420)
        service.add_tenant(s, "acme", ["10.10.0.0/24"], ["203.0.113.10"])
        service.add_peer(s, "acme/alice")
    with sqlite3.connect(state_dir / "wggw.db") as db:
        db.execute(
            "UPDATE interfaces SET private_key = ?, public_key = ?",
            (RAW, keys.public_of(keys.Secret(RAW))),
        )
        db.execute("UPDATE peers SET private_key = ?", (RAW,))
    with open_store(state_dir) as s:
        state = s.load()
    assert state.interfaces[0].private_key.reveal() == RAW_CLAMPED
    assert (
        state.peers[0].private_key is not None
        and state.peers[0].private_key.reveal() == RAW_CLAMPED
    )


def test_the_fake_expires_sessions_like_the_kernel():
    fake = FakeSystem()
    reconcile.converge(world(keys.Secret(RAW_CLAMPED)), fake)
    fake.apply([ConfigureDevice("wgk0", keys.Secret(RAW_CLAMPED), 51820)])
    assert fake.session_resets == {}
    fake.apply([ConfigureDevice("wgk0", keys.Secret(RAW), 51820)])  # same key, unclamped
    assert fake.session_resets == {"wgk0": 1}


@pytest.mark.parametrize("key", [RAW, RAW_CLAMPED], ids=["raw-key", "clamped-key"])
def test_listen_port_drift_is_repaired_without_sending_the_key(key):
    fake = FakeSystem()
    state = world(keys.Secret(key))
    reconcile.converge(state, fake)
    fake.state = replace(fake.state, wg={"wgk0": replace(fake.state.wg["wgk0"], listen_port=40000)})
    changes = reconcile.compute(state, fake).changes
    assert changes == [ConfigureDevice("wgk0", None, 51820)]
    assert str(changes[0]) == "[#] wg set wgk0 listen-port 51820 fwmark 0"
    reconcile.converge(state, fake)
    assert fake.session_resets == {}
    assert fake.private_keys["wgk0"] == RAW_CLAMPED


def test_a_new_key_goes_out_clamped():
    fake = FakeSystem()
    reconcile.converge(world(keys.Secret(RAW)), fake)
    configure = [line for line in fake.log if "private-key" in line]
    assert len(configure) == 1
    assert fake.private_keys["wgk0"] == RAW_CLAMPED
    # The same key, sent again (a repair, an HA takeover), is then a no-op for the kernel.
    fake.apply([ConfigureDevice("wgk0", keys.clamped(keys.Secret(RAW)), 51820)])
    assert fake.session_resets == {}


class RecordingWireGuard:
    """Stands in for pyroute2's WireGuard socket: records what would go to the kernel."""

    calls: list[dict] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def set(self, ifname, **fields):
        self.calls.append({"ifname": ifname, **fields})


def test_backends_send_the_key_only_when_given_and_clamped(monkeypatch):
    RecordingWireGuard.calls = []
    monkeypatch.setattr(wg_kernel, "_wireguard_socket", RecordingWireGuard)
    backend = wg_kernel.KernelBackend()
    backend.configure("wgk0", None, 51821)
    backend.configure("wgk0", keys.Secret(RAW), 51821)
    assert RecordingWireGuard.calls == [
        {
            "ifname": "wgk0",
            "private_key": None,
            "listen_port": 51821,
            "fwmark": 0,
        },  # pyroute2 omits None
        {"ifname": "wgk0", "private_key": RAW_CLAMPED, "listen_port": 51821, "fwmark": 0},
    ]
    assert wg_uapi.device_lines(None, 51821) == ["listen_port=51821", "fwmark=0"]
    assert wg_uapi.device_lines(keys.Secret(RAW), 51821) == [
        f"private_key={base64.b64decode(RAW_CLAMPED).hex()}",
        "listen_port=51821",
        "fwmark=0",
    ]
