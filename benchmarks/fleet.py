"""The benchmark's gateway contents (T tenants x P peers, real X25519 keys), written both as a
wggw store and as the naive manager's files, so both managers configure exactly the same peers.

The store is written directly through wggw's `Store` transaction API in one transaction: this
is setup, not a measured operation (10,000 `wggw peer add` processes would take an hour).
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from wggw.core import keys
from wggw.core.model import Interface, Peer, Tenant
from wggw.store.sqlite import open_store

from .lab import GW_UPLINK, LISTEN_PORT, egress, peer_addr, pool

OLD = 200 * 86400  # peer 0 of every tenant has a key this old: `rotate --older-than 30d` picks them


@dataclass
class Fleet:
    ifname: str
    tenants: int
    peers: int
    iface: Interface
    tenant_list: list[Tenant]
    peer_list: list[Peer]

    @property
    def n_peers(self) -> int:
        return len(self.peer_list)

    def on(self, ifname: str) -> Fleet:
        """The same tenants and keys on another interface name (another site of the run)."""
        iface = replace(self.iface, name=ifname)
        return Fleet(
            ifname,
            self.tenants,
            self.peers,
            iface,
            [replace(t, interface=ifname) for t in self.tenant_list],
            self.peer_list,
        )


def make(ifname: str, tenants: int, peers: int, now: float | None = None) -> Fleet:
    now = time.time() if now is None else now
    priv, pub = keys.keypair()
    iface = Interface(ifname, LISTEN_PORT, f"{GW_UPLINK}:{LISTEN_PORT}", priv, pub)
    ts, ps = [], []
    for i in range(tenants):
        ts.append(
            Tenant(
                f"t{i}",
                ifname,
                (ipaddress.ip_network(pool(i)),),
                (ipaddress.ip_address(egress(i)),),
                60000 + i,
                uplink="uplink0",
            )
        )
        for j in range(peers):
            k, kp = keys.keypair()
            created = now - OLD if j == 0 else now
            ps.append(
                Peer(
                    f"t{i}",
                    f"p{j}",
                    kp,
                    (ipaddress.ip_interface(peer_addr(i, j) + "/32"),),
                    created,
                    private_key=k,
                    psk=keys.generate_psk(),
                    created_at=created,
                )
            )
    return Fleet(ifname, tenants, peers, iface, ts, ps)


def write_store(fleet: Fleet, state_dir: Path) -> None:
    with open_store(state_dir, create=True) as store, store.transaction() as tx:
        tx.add_interface(fleet.iface)
        for t in fleet.tenant_list:
            tx.add_tenant(t)
        for p in fleet.peer_list:
            tx.add_peer(p)


def write_naive(fleet: Fleet, directory: Path) -> Path:
    """The naive manager's input: one 0600 JSON file with every key inline (what a shell
    tool's config directory amounts to)."""
    spec = {
        "ifname": fleet.ifname,
        "listen_port": LISTEN_PORT,
        "private_key": fleet.iface.private_key.reveal(),
        "tenants": [
            {
                "pool": str(t.pools[0]),
                "egress": str(t.egress[0]),
                "table": t.table,
                "gateway": f"{next(t.pools[0].hosts())}/{t.pools[0].prefixlen}",
            }
            for t in fleet.tenant_list
        ],
        "peers": [
            {
                "tenant": p.tenant,
                "name": p.name,
                "public_key": p.public_key,
                "psk": p.psk.reveal(),
                "allowed": str(p.addresses[0]),
            }
            for p in fleet.peer_list
        ],
    }
    path = directory / "naive.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    return path
