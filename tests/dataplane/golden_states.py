"""The configurations of the golden plan scripts: a fixed sequence of operator states with
fixed keys, so the `[#]` lines the planner prints for each transition are the same on
every run and can be kept as files (tests/golden/) and reviewed like code."""

from __future__ import annotations

import base64
import hashlib
import ipaddress as ip
from dataclasses import replace

from wggw.core import keys, naming
from wggw.core.keys import Secret
from wggw.core.model import Interface, Peer, State, Tenant


def fixed_secret(label: str) -> Secret:
    """A deterministic X25519 private key (already clamped) or PSK named by `label`."""
    raw = bytearray(hashlib.sha256(f"wggw golden {label}".encode()).digest())
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return Secret(base64.b64encode(bytes(raw)).decode())


def _iface(port: int = 51820, mtu: int | None = None) -> Interface:
    priv = fixed_secret("wg0")
    return Interface("wgg0", port, "192.0.2.1:51820", priv, keys.public_of(priv), mtu)


def _tenant(i: int, v6: bool, egress4: str | None = None) -> Tenant:
    pools = (ip.ip_network(f"10.{i}.0.0/24"),) + ((ip.ip_network(f"fd00:{i}::/64"),) if v6 else ())
    egress = (ip.ip_address(egress4 or f"203.0.113.{i}"),)
    egress += (ip.ip_address(f"2001:db8::{i}"),) if v6 else ()
    return Tenant(f"t{i}", "wgg0", pools, egress, naming.TABLE_MIN + i)


def _peer(t: Tenant, j: int, keepalive: int | None = None, psk: bool = True) -> Peer:
    priv = fixed_secret(f"{t.name}-p{j}")
    addrs = tuple(
        ip.ip_interface(f"{p.network_address + 2 + j}/{p.max_prefixlen}") for p in t.pools
    )
    return Peer(
        t.name,
        f"p{j}",
        keys.public_of(priv),
        addrs,
        0.0,
        priv,
        fixed_secret(f"{t.name}-p{j}-psk") if psk else None,
        keepalive,
    )


def secrets_of(state: State) -> list[Secret]:
    out = [i.private_key for i in state.interfaces]
    for p in state.peers:
        out += [s for s in (p.private_key, p.psk) if s is not None]
    return out


def steps() -> list[tuple[str, State]]:
    """(name, state) in order; each golden file holds the plan from the previous state."""
    wg, t1, t2 = _iface(), _tenant(1, v6=False), _tenant(2, v6=True)
    wg1, wg2 = _iface(51821), _iface(51821, 1380)
    p10, p20, p21 = _peer(t1, 0), _peer(t2, 0, keepalive=25), _peer(t2, 1, psk=False)
    # A keepalive is the client's setting (the gateway keeps no peer alive): the PSK changes.
    p20_psk2 = replace(p20, psk=fixed_secret("t2-p0-psk-2"))
    t1_moved = _tenant(1, v6=False, egress4="203.0.113.101")
    # (an egress the host already has, like the fake's 192.0.2.1, is refused: core/conflicts.py)
    t3 = _tenant(3, v6=False, egress4="203.0.113.103")
    t2_via = replace(t2, via=(ip.ip_address("192.0.2.253"),))  # IPv6 keeps main's gateway
    return [
        ("01-empty-to-one-tenant-v4", State((wg,), (t1,))),
        ("02-second-tenant-dual-stack", State((wg,), (t1, t2))),
        ("03-peers-added", State((wg,), (t1, t2), (p10, p20, p21))),
        ("04-peer-psk-changed", State((wg,), (t1, t2), (p10, p20_psk2, p21))),
        ("05-peer-removed", State((wg,), (t1, t2), (p10, p20))),
        ("06-listen-port-changed", State((wg1,), (t1, t2), (p10, p20))),
        ("07-egress-changed", State((wg1,), (t1_moved, t2), (p10, p20))),
        ("08-third-tenant-added", State((wg1,), (t1_moved, t2, t3), (p10, p20))),
        ("09-interface-mtu-changed", State((wg2,), (t1_moved, t2, t3), (p10, p20))),
        ("10-tenant-next-hop-changed", State((wg2,), (t1_moved, t2_via, t3), (p10, p20))),
        ("11-tenant-removed", State((wg2,), (t2_via, t3), (p20,))),
        ("12-everything-to-empty", State()),
    ]
