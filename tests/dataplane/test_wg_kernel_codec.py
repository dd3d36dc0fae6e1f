"""The kernel WireGuard backend's message handling, without a kernel module: dumps split over
several genetlink messages merge by public key, and the SET_DEVICE messages we build decode
(by pyroute2's own wgmsg class) to exactly the peers and flags meant. Moved here from the
root-only tests/netns tier: it needs neither root nor a namespace."""

from __future__ import annotations

import ipaddress

from pyroute2.netlink.generic.wireguard import (
    WGPEER_F_REMOVE_ME,
    WGPEER_F_REPLACE_ALLOWEDIPS,
    wgmsg,
)

from wggw.backends import wg_kernel
from wggw.backends.wireguard import ZERO_KEY_B64
from wggw.core import keys
from wggw.core.wgtypes import WgPeerSpec


def peer(allowed: tuple[str, ...], psk: bool = False, keepalive: int | None = None) -> WgPeerSpec:
    """A new peer in wgtypes' normal form (canonical CIDRs, sorted), as the planner passes it."""
    cidrs = tuple(sorted(str(ipaddress.ip_network(c)) for c in allowed))
    return WgPeerSpec(keys.keypair()[1], keys.generate_psk() if psk else None, cidrs, keepalive)


def kernel_message(device_attrs: list, peers: list):
    """Encode a GET_DEVICE reply and decode it again, as pyroute2 hands it to us."""
    msg = wgmsg()
    msg["cmd"], msg["version"] = 0, 1
    msg["attrs"] = [["WGDEVICE_A_IFNAME", "wt000000"], *device_attrs, ["WGDEVICE_A_PEERS", peers]]
    msg["header"]["type"] = 0x20
    msg.encode()
    decoded = wgmsg(msg.data)
    decoded.decode()
    return decoded


def test_kernel_dump_is_merged_by_key():
    """What the kernel sends for a large device, decoded as pyroute2 decodes it: the first
    message carries the device, and a peer's allowed IPs continue in the next message with
    only its key repeated."""
    a = peer(("192.0.2.1/32", "2001:db8::1/128"), psk=True, keepalive=25)
    b = peer(("192.0.2.2/32", "192.0.2.3/32", "2001:db8::2/128"))
    b_head = wg_kernel._peer_nla(WgPeerSpec(b.public_key, b.psk, b.allowed_ips[:1], b.keepalive))
    b_tail = wg_kernel._peer_nla(WgPeerSpec(b.public_key, None, b.allowed_ips[1:], None))
    b_tail["attrs"] = [
        x for x in b_tail["attrs"] if x[0] in ("WGPEER_A_PUBLIC_KEY", "WGPEER_A_ALLOWEDIPS")
    ]
    messages = [
        kernel_message([["WGDEVICE_A_LISTEN_PORT", 51820]], [wg_kernel._peer_nla(a), b_head]),
        kernel_message([], [b_tail]),
    ]
    state = wg_kernel.merge_dump("wt000000", messages)
    assert state.listen_port == 51820
    assert {k: p.spec() for k, p in state.peers.items()} == {a.public_key: a, b.public_key: b}
    many = [peer((f"10.0.{i // 250}.{i % 250}/32",)) for i in range(2000)]
    batches = wg_kernel.peer_batches(many, [keys.keypair()[1]])
    assert len(batches) > 1 and sum(map(len, batches)) == 2001


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value  # keys decode as bytes


def test_set_device_message_decodes_to_the_peers_meant():
    a = peer(("192.0.2.1/32", "2001:db8::1/128"), psk=True, keepalive=25)
    b = peer(("198.51.100.0/28",))
    gone = keys.keypair()[1]
    (batch,) = wg_kernel.peer_batches([a, b], [gone])
    msg = wg_kernel.encode_set("wgk0", batch)
    msg["header"]["type"] = 0x20
    msg.encode()
    decoded = wgmsg(msg.data)
    decoded.decode()
    assert (decoded["cmd"], decoded.get_attr("WGDEVICE_A_IFNAME")) == (1, "wgk0")  # SET_DEVICE
    peers = decoded.get_attr("WGDEVICE_A_PEERS")
    assert len(peers) == 3
    removal, *upserts = peers
    assert text(removal.get_attr("WGPEER_A_PUBLIC_KEY")) == gone  # removals first
    assert removal.get_attr("WGPEER_A_FLAGS") == WGPEER_F_REMOVE_ME
    for spec, nla in zip((a, b), upserts, strict=True):
        assert text(nla.get_attr("WGPEER_A_PUBLIC_KEY")) == spec.public_key
        assert nla.get_attr("WGPEER_A_FLAGS") == WGPEER_F_REPLACE_ALLOWEDIPS
        psk = spec.psk.reveal() if spec.psk else ZERO_KEY_B64  # zeros: "no PSK", not "unchanged"
        assert text(nla.get_attr("WGPEER_A_PRESHARED_KEY")) == psk
        assert nla.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL") == (spec.keepalive or 0)
        ips = sorted(ip["addr"] for ip in nla.get_attr("WGPEER_A_ALLOWEDIPS"))
        assert ips == sorted(spec.allowed_ips)
